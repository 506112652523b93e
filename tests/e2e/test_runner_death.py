"""A runner process killed mid-job: the job fails with runner_system_failure, its log is kept."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.plugins.processes import kill_working_in
from tests.plugins.repos import make_repo

pytestmark = pytest.mark.e2e

TIMEOUT = 4  # CONVEYOR_RUNNING_NO_UPDATE_TIMEOUT for this test


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"CONVEYOR_RUNNING_NO_UPDATE_TIMEOUT": str(TIMEOUT), "CONVEYOR_SWEEP_INTERVAL": "1"}


def test_killed_runner_fails_the_job_with_runner_system_failure(server_process, admin, start_runner, tmp_path: Path) -> None:  # noqa: ANN001
    make_repo(tmp_path / "repo", "long:\n  script:\n    - echo 'started the long job'\n    - sleep 120\n")
    project = admin.project(str(tmp_path / "repo"))
    runner = start_runner(server_process.url, admin.runner_token())
    pipeline = admin.pipeline(project["id"])
    deadline = time.monotonic() + 60
    while b"started the long job" not in admin.trace(project["id"], admin.jobs(project["id"], pipeline["id"])["long"]["id"]):
        assert time.monotonic() < deadline, "the job never logged"
        time.sleep(0.2)
    job = admin.jobs(project["id"], pipeline["id"])["long"]
    runner.proc.send_signal(signal.SIGKILL)  # the runner dies without a word
    runner.proc.wait()
    killed_at = time.monotonic()

    final = admin.wait(project["id"], pipeline["id"], timeout=60)
    job = admin.jobs(project["id"], pipeline["id"])["long"]
    assert final["status"] == "failed"
    assert job["status"] == "failed" and job["failure_reason"] == "runner_system_failure"
    assert time.monotonic() - killed_at >= TIMEOUT - 1  # not before the configured silence
    assert b"started the long job" in admin.trace(project["id"], job["id"])
    assert kill_working_in(runner.builds_dir), "the job's shell runs in its own session and outlives its runner"

