"""Both executors end to end: real server process, ``conveyor runner run`` process, real git repos,
and for docker a real engine (Podman's Docker API) with a busybox image.

Covers success, script failure, timeout, artifacts passed between stages, a masked secret
straddling two PATCHes never reaching the server, and graceful and hard cancellation.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import signal
import time
from pathlib import Path

import pytest

from conveyor.runner import config as config_file
from tests.integration.runner.cli import ConfigRunner, register
from tests.plugins.repos import make_repo

pytestmark = pytest.mark.e2e

PIPELINE = """
stages: [build, test]
default:
  image: {image}
build:
  stage: build
  script:
    - mkdir -p out && echo "built by $CI_JOB_NAME" > out/result.txt
    - echo "$CI_JOB_TOKEN" > token.txt
    - echo "b64=$(base64 < token.txt | tr -d '\\n')"
    - echo before-secret
    - 'printf "token: %s" "$(head -c 12 token.txt)"; sleep 4; printf "%s\\n" "$(cut -c13- token.txt)"'
  artifacts:
    paths: [out/]
consume:
  stage: test
  script:
    - cat out/result.txt
fails:
  stage: test
  script: [echo failing, exit 3]
slow:
  stage: test
  timeout: 3s
  script: [echo sleeping, sleep 60]
  after_script: [echo after-timeout]
"""

CANCEL = """
wait:
  image: {image}
  script: [echo started, sleep 300]
  after_script: [echo after-ran]
"""


@pytest.fixture(params=["shell", "docker"])
def runner_config(request, server_process, admin, tmp_path: Path) -> Path:  # noqa: ANN001
    config = tmp_path / "runner" / "config.toml"
    options = ["--executor", request.param]
    if request.param == "docker":
        engine = request.getfixturevalue("podman")
        options += ["--docker-host", engine.host, "--docker-image", engine.image,
                    "--docker-pull-policy", "if-not-present"]  # fmt: skip
    register(config, server_process.url, admin.runner_token(), *options)
    return config


@pytest.fixture
def image(request) -> str:  # noqa: ANN001
    from tests.plugins.podman import IMAGE

    return IMAGE


def wait_for(predicate, what: str, timeout: float = 60.0):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)
    return value


def test_pipeline_artifacts_failure_timeout_and_a_split_secret(
    runner_config: Path, admin, image: str, tmp_path: Path  # noqa: ANN001
) -> None:
    make_repo(tmp_path / "repo", PIPELINE.format(image=image))
    project = admin.project(str(tmp_path / "repo"))
    runner = ConfigRunner(runner_config)
    try:
        pipeline = admin.pipeline(project["id"])
        build = admin.jobs(project["id"], pipeline["id"])["build"]
        # While the script sleeps between the two halves, PATCHes go out: the first half of the
        # token is held back by the masker, so the server never has it.
        during = wait_for(lambda: (t := admin.trace(project["id"], build["id"])) and b"before-secret" in t and t,
                          "the first half of the secret was printed")  # fmt: skip
        time.sleep(1.5)  # at least one more PATCH with the half-written secret pending
        during = admin.trace(project["id"], build["id"])
        final = admin.wait(project["id"], pipeline["id"])
        runner.signal(signal.SIGTERM)
        assert runner.wait() == 0
    finally:
        runner.stop()
    jobs = admin.jobs(project["id"], pipeline["id"])
    logs = {name: admin.trace(project["id"], job["id"]).decode() for name, job in jobs.items()}
    assert final["status"] == "failed"
    assert {n: j["status"] for n, j in jobs.items()} == {
        "build": "success", "consume": "success", "fails": "failed", "slow": "failed"}, logs  # fmt: skip
    assert "built by build" in logs["consume"]  # the artifact of the build stage
    assert (jobs["fails"]["failure_reason"], jobs["fails"]["exit_code"]) == ("script_failure", 3)
    assert jobs["slow"]["failure_reason"] == "job_execution_timeout" and "after-timeout" in logs["slow"]

    encoded = re.search(r"^b64=([A-Za-z0-9+/=]+)$", logs["build"], re.M)  # the test's way to learn the token
    assert encoded is not None, logs["build"]
    token = base64.b64decode(encoded.group(1)).decode().strip()
    assert len(token) > 12
    assert b"token: " in during and token[:12].encode() not in during
    assert "token: [MASKED]\n" in logs["build"], logs["build"][-1500:]
    for piece in (token, token[:12], token[12:]):
        assert piece not in logs["build"]


def test_cancel_graceful_then_hard(runner_config: Path, admin, image: str, tmp_path: Path, request) -> None:  # noqa: ANN001
    make_repo(tmp_path / "repo", CANCEL.format(image=image))
    project = admin.project(str(tmp_path / "repo"))

    def cancel_one(config: Path) -> tuple[dict, str]:
        runner = ConfigRunner(config)
        try:
            pipeline = admin.pipeline(project["id"])
            job = admin.jobs(project["id"], pipeline["id"])["wait"]
            wait_for(lambda: b"started" in admin.trace(project["id"], job["id"]), "the job started")
            admin.http.post(f"/projects/{project['id']}/jobs/{job['id']}/cancel").raise_for_status()
            admin.wait(project["id"], pipeline["id"])
            wait_for(lambda: "job finished" in runner.log(), "the runner finished the job")
            runner.signal(signal.SIGTERM)
            assert runner.wait() == 0
        finally:
            runner.stop()
        job = admin.jobs(project["id"], pipeline["id"])["wait"]
        return job, admin.trace(project["id"], job["id"]).decode()

    job, log = cancel_one(runner_config)
    assert job["status"] == "canceled"
    assert "script canceled externally" in log and "after-ran" in log

    loaded = config_file.load(runner_config)
    hard = runner_config.with_name("hard.toml")
    entry = dataclasses.replace(loaded.runners[0], cancel_gracefully=False)
    config_file.save(dataclasses.replace(loaded, runners=[entry]), hard)
    job, log = cancel_one(hard)
    assert job["status"] == "canceled"
    assert "after-ran" not in log
    if "docker" in request.node.callspec.id:
        assert request.getfixturevalue("podman").containers() == []
