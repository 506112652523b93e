"""A job log survives the server being SIGKILLed mid-job and restarted."""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import pytest

from tests.plugins.repos import make_repo

pytestmark = pytest.mark.e2e

SLOW = """
slow:
  script:
    - for i in $(seq 1 60); do echo "line $i $(printf 'x%.0s' $(seq 1 200))" | tee -a "$CI_PROJECT_DIR/../printed-$CI_JOB_ID.txt"; sleep 0.15; done
"""


def test_log_is_complete_after_server_sigkill(server_process, admin, start_runner, tmp_path: Path) -> None:  # noqa: ANN001
    make_repo(tmp_path / "repo", SLOW)
    project = admin.project(str(tmp_path / "repo"))
    runner = start_runner(server_process.url, admin.runner_token())
    pipeline = admin.pipeline(project["id"])

    deadline = time.monotonic() + 60
    while True:  # wait until part of the log is stored on the server
        job = admin.jobs(project["id"], pipeline["id"])["slow"]
        if job["trace_size"] > 2000:
            break
        assert time.monotonic() < deadline, "the job never started logging"
        time.sleep(0.2)
    size_before_kill = job["trace_size"]
    server_process.kill()
    time.sleep(3)  # the job keeps printing while the server is gone
    server_process.start()

    final = admin.wait(project["id"], pipeline["id"])
    job = admin.jobs(project["id"], pipeline["id"])["slow"]
    assert final["status"] == "success" and job["status"] == "success"
    log = admin.trace(project["id"], job["id"])
    printed = next(runner.builds_dir.rglob(f"printed-{job['id']}.txt")).read_bytes()
    assert printed.count(b"\n") == 60
    assert printed in log
    assert len(log) > size_before_kill
    assert job["trace_checksum"] == f"crc32:{zlib.crc32(log):08x}"

