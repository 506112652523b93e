"""Pipeline states end to end: a real server process, a real runner process (shell executor).

Retry of a job that fails once, a delayed job, a manual job played, a pipeline canceled mid-run,
and an interruptible pipeline auto-canceled by a newer commit.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.live import ROOT_TOKEN
from tests.plugins.repos import make_repo

pytestmark = pytest.mark.e2e

# fails the first time (no marker yet), passes on the retry
FLAKY_SCRIPT = 'if [ -f "$MARKER" ]; then echo "second attempt passes"; else touch "$MARKER"; echo "first attempt fails"; exit 7; fi'

STATES = f"""
stages: [test, rollout, deploy]
flaky:
  stage: test
  retry: 1
  script:
    - '{FLAKY_SCRIPT}'
rollout:
  stage: rollout
  when: delayed
  start_in: 1 second
  script: [echo rolled out]
deploy:
  stage: deploy
  when: manual
  allow_failure: false
  script: [echo deployed by hand]
"""


def _wait_job(admin, project: int, pipeline: int, name: str, status: str, timeout: float = 60) -> dict[str, Any]:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = admin.jobs(project, pipeline).get(name)
        if job and job["status"] == status:
            return job
        time.sleep(0.2)
    raise AssertionError(f"{name} did not become {status}: {admin.jobs(project, pipeline)}")


def _wait_pipeline(admin, project: int, pipeline: int, status: str, timeout: float = 60) -> dict[str, Any]:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = admin.http.get(f"/projects/{project}/pipelines/{pipeline}").json()
        if state["status"] == status:
            return state
        time.sleep(0.2)
    raise AssertionError(f"pipeline {pipeline} did not become {status}: {state}")


def test_retry_delayed_and_manual_jobs(server_process, admin, start_runner, tmp_path: Path) -> None:  # noqa: ANN001
    marker = tmp_path / "flaky-ran-once"
    make_repo(tmp_path / "repo", STATES.replace("$MARKER", str(marker)))
    project = admin.project(str(tmp_path / "repo"))["id"]
    start_runner(server_process.url, admin.runner_token())
    pipeline = admin.pipeline(project)["id"]

    # the flaky job fails, is retried at once, passes; the delayed job waits for its timer
    rollout = _wait_job(admin, project, pipeline, "rollout", "scheduled")
    assert rollout["scheduled_at"]
    deploy = _wait_job(admin, project, pipeline, "deploy", "manual")
    assert _wait_pipeline(admin, project, pipeline, "manual")["status"] == "manual"  # blocked on deploy
    attempts = admin.http.get(f"/projects/{project}/pipelines/{pipeline}/jobs", params={"include_retried": "true", "per_page": 100}).json()
    flaky = [(j["status"], j["retried"]) for j in attempts if j["name"] == "flaky"]
    assert flaky == [("failed", True), ("success", False)]
    assert [j["exit_code"] for j in attempts if j["name"] == "flaky"][0] == 7
    first, second = (j["id"] for j in attempts if j["name"] == "flaky")
    assert b"first attempt fails" in admin.trace(project, first)
    assert b"second attempt passes" in admin.trace(project, second)
    assert b"rolled out" in admin.trace(project, admin.jobs(project, pipeline)["rollout"]["id"])

    played = admin.http.post(f"/projects/{project}/jobs/{deploy['id']}/play")
    assert played.status_code == 200 and played.json()["status"] == "pending"
    assert admin.wait(project, pipeline)["status"] == "success"
    assert b"deployed by hand" in admin.trace(project, deploy["id"])


# prints every second, so the runner PATCHes often and hears of the cancel within a second or two
# (with a silent script it would only hear at its next keep-alive, up to 30 s later)
SLOW = """
slow:
  interruptible: {interruptible}
  script:
    - echo started
    - for i in $(seq 120); do echo "tick $i"; sleep 1; done
"""


def test_cancel_a_pipeline_mid_run(server_process, admin, start_runner, tmp_path: Path) -> None:  # noqa: ANN001
    make_repo(tmp_path / "repo", SLOW.format(interruptible="false") + "after:\n  stage: deploy\n  script: [echo never]\n"
              "stages: [test, deploy]\n")
    project = admin.project(str(tmp_path / "repo"))["id"]
    start_runner(server_process.url, admin.runner_token())
    pipeline = admin.pipeline(project)["id"]
    slow = _wait_job(admin, project, pipeline, "slow", "running")
    _wait_log(admin, project, slow["id"], b"started")

    started = time.monotonic()
    canceled = admin.http.post(f"/projects/{project}/pipelines/{pipeline}/cancel").json()
    assert canceled["status"] in ("canceling", "canceled")
    assert admin.wait(project, pipeline, timeout=60)["status"] == "canceled"
    assert time.monotonic() - started < 60  # the runner stopped the script, it did not run on
    assert b"tick 100" not in admin.trace(project, slow["id"])
    assert {n: j["status"] for n, j in admin.jobs(project, pipeline).items()} == {"slow": "canceled", "after": "canceled"}


def test_a_new_commit_auto_cancels_an_interruptible_pipeline(server_process, admin, start_runner, tmp_path: Path) -> None:  # noqa: ANN001
    repo = tmp_path / "repo"
    make_repo(repo, SLOW.format(interruptible="true"))
    project = admin.project(str(repo))["id"]
    start_runner(server_process.url, admin.runner_token())
    old = admin.pipeline(project)["id"]
    slow = _wait_job(admin, project, old, "slow", "running")
    _wait_log(admin, project, slow["id"], b"started")

    (repo / ".gitlab-ci.yml").write_text("quick:\n  script: [echo newer commit]\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@conveyor.invalid"]
    subprocess.run([*git, "commit", "--quiet", "-am", "newer"], check=True)
    new = admin.pipeline(project)["id"]

    state = admin.wait(project, old, timeout=60)
    assert state["status"] == "canceled" and state["auto_canceled_by_id"] == new
    assert admin.wait(project, new, timeout=60)["status"] == "success"


def _wait_log(admin, project: int, job: int, needle: bytes, timeout: float = 30) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in admin.trace(project, job):
            return
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} never reached the log of job {job}")


def test_cli_play_cancel_retry(server_process, admin, tmp_path: Path) -> None:  # noqa: ANN001
    from tests.e2e.test_cli import conveyor

    make_repo(tmp_path / "repo", "build:\n  script: [x]\napprove:\n  when: manual\n  script: [y]\n")
    project = admin.project(str(tmp_path / "repo"))["id"]
    pipeline = admin.pipeline(project)["id"]
    server = ["--url", server_process.url, "--token", ROOT_TOKEN]

    listed = conveyor("pipeline", "jobs", str(project), str(pipeline), *server)
    assert listed.returncode == 0, listed.stderr
    jobs = {j["name"]: j for j in json.loads(listed.stdout)}
    assert {n: j["status"] for n, j in jobs.items()} == {"build": "pending", "approve": "manual"}

    played = conveyor("pipeline", "play", str(project), str(jobs["approve"]["id"]), *server)
    assert played.returncode == 0, played.stderr
    assert json.loads(played.stdout)["status"] == "pending"
    unplayable = conveyor("pipeline", "play", str(project), str(jobs["build"]["id"]), *server)
    assert unplayable.returncode == 1 and "Unplayable Job" in unplayable.stderr

    canceled = conveyor("pipeline", "cancel", str(project), str(pipeline), *server)
    assert canceled.returncode == 0, canceled.stderr
    assert json.loads(canceled.stdout)["status"] == "canceled"

    retried = conveyor("pipeline", "retry", str(project), "--job", str(jobs["build"]["id"]), *server)
    assert retried.returncode == 0, retried.stderr
    new = json.loads(retried.stdout)
    assert new["name"] == "build" and new["status"] == "pending" and new["id"] != jobs["build"]["id"]
    assert admin.http.get(f"/projects/{project}/pipelines/{pipeline}").json()["status"] == "pending"

    ambiguous = conveyor("pipeline", "retry", str(project), *server)
    assert ambiguous.returncode == 2 and "pipeline id or --job" in ambiguous.stderr
    conveyor("pipeline", "cancel", str(project), str(pipeline), *server)
    whole = conveyor("pipeline", "retry", str(project), str(pipeline), *server)
    assert whole.returncode == 0, whole.stderr
    assert json.loads(whole.stdout)["status"] == "pending"
    assert {n: j["status"] for n, j in admin.jobs(project, pipeline).items()} == {"build": "pending", "approve": "manual"}
