"""``conveyor runner register`` + ``conveyor runner run`` against a real server process.

Two entries in one config.toml serve jobs at the same time; /metrics counts them; SIGTERM lets
the running job finish, a second SIGTERM aborts it.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from conveyor.runner import config as config_file
from tests.integration.runner.cli import ConfigRunner, metric, register, scrape
from tests.plugins.repos import make_repo
from tests.plugins.services import free_port

pytestmark = pytest.mark.e2e

RENDEZVOUS = """
stages: [test]
variables:
  MEET: "{meet}"
.wait: &wait
  - touch "$MEET/$CI_JOB_NAME"
  - for i in $(seq 1 300); do [ -f "$MEET/$OTHER" ] && exit 0; sleep 0.1; done; echo "alone"; exit 1
left:
  variables: {{OTHER: right}}
  script: *wait
right:
  variables: {{OTHER: left}}
  script: *wait
"""

SLOW = """
slow:
  script:
    - echo "started"
    - sleep {sleep}
    - echo "finished"
"""


def wait_for(predicate, what: str, timeout: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)


@pytest.fixture
def runners(tmp_path: Path):  # noqa: ANN201
    started: list[ConfigRunner] = []

    def start(config: Path) -> ConfigRunner:
        started.append(ConfigRunner(config))
        return started[-1]

    yield start
    for runner in started:
        runner.stop()


def test_two_entries_run_jobs_at_once(server_process, admin, runners, tmp_path: Path) -> None:  # noqa: ANN001
    meet = tmp_path / "meet"
    meet.mkdir()
    make_repo(tmp_path / "repo", RENDEZVOUS.format(meet=meet))
    project = admin.project(str(tmp_path / "repo"))
    config = tmp_path / "runner" / "config.toml"
    address = f"127.0.0.1:{free_port()}"
    register(config, server_process.url, admin.runner_token(), "--name", "one", "--limit", "1",
             "--concurrent", "2", "--listen-address", address, "--tag", "linux")  # fmt: skip
    register(config, server_process.url, admin.runner_token(), "--name", "two", "--limit", "1")
    written = config_file.load(config)
    assert (written.concurrent, [r.name for r in written.runners]) == (2, ["one", "two"])
    assert all(r.id > 0 and r.token.startswith("glrt-") for r in written.runners)
    assert written.runners[0].tags == ["linux"]
    runner = runners(config)

    pipeline = admin.pipeline(project["id"])
    final = admin.wait(project["id"], pipeline["id"])

    jobs = admin.jobs(project["id"], pipeline["id"])
    assert final["status"] == "success", {n: admin.trace(project["id"], j["id"]) for n, j in jobs.items()}
    text = scrape(address)
    assert metric(text, "conveyor_runner_jobs_total", runner="one", state="success") == 1
    assert metric(text, "conveyor_runner_jobs_total", runner="two", state="success") == 1
    assert metric(text, "conveyor_runner_trace_bytes_sent_total") == sum(j["trace_size"] for j in jobs.values())
    assert metric(text, "conveyor_runner_jobs_running", runner="one") == 0
    runner.signal(signal.SIGTERM)
    assert runner.wait() == 0


def test_register_rejects_an_unknown_token(server_process, tmp_path: Path) -> None:  # noqa: ANN001
    with pytest.raises(AssertionError, match="failed to verify"):
        register(tmp_path / "config.toml", server_process.url, "glrt-not-a-runner")
    assert not (tmp_path / "config.toml").exists()


def test_sigterm_finishes_the_running_job_and_a_second_aborts(
    server_process, admin, runners, tmp_path: Path  # noqa: ANN001
) -> None:
    make_repo(tmp_path / "graceful", SLOW.format(sleep=3))
    make_repo(tmp_path / "hard", SLOW.format(sleep=300))
    config = tmp_path / "runner" / "config.toml"
    register(config, server_process.url, admin.runner_token())

    def run_until_started(repo: str) -> tuple[ConfigRunner, dict, dict]:
        project = admin.project(str(tmp_path / repo))
        runner = runners(config)
        pipeline = admin.pipeline(project["id"])
        job = admin.jobs(project["id"], pipeline["id"])["slow"]
        wait_for(lambda: b"started" in admin.trace(project["id"], job["id"]), "the job printed started")
        return runner, project, pipeline

    runner, project, pipeline = run_until_started("graceful")
    runner.signal(signal.SIGTERM)
    assert runner.wait() == 0
    job = admin.jobs(project["id"], pipeline["id"])["slow"]
    assert job["status"] == "success" and b"finished" in admin.trace(project["id"], job["id"])

    runner, project, pipeline = run_until_started("hard")
    runner.signal(signal.SIGTERM)
    time.sleep(0.5)
    runner.signal(signal.SIGTERM)
    assert runner.wait() == 0
    admin.wait(project["id"], pipeline["id"])
    job = admin.jobs(project["id"], pipeline["id"])["slow"]
    assert (job["status"], job["failure_reason"]) == ("failed", "runner_interrupted")
    assert b"finished" not in admin.trace(project["id"], job["id"])
