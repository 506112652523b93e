"""A pipeline end to end: real server process, real runner process, shell executor, git repo."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from tests.plugins.repos import make_repo

pytestmark = pytest.mark.e2e

# The job prints ~400 KiB (crossing three 128 KiB chunks and several PATCHes) and keeps a copy
# of exactly what it printed next to the build directory.
PRINTER = """#!/usr/bin/env bash
set -eo pipefail
python3 - <<'PY' | tee "$CI_PROJECT_DIR/../printed-$CI_JOB_ID.txt"
import base64, hashlib
for i in range(5000):
    print(f"{i:05d} " + base64.b64encode(hashlib.sha256(str(i).encode()).digest() * 2).decode())
PY
"""

PIPELINE = """
stages: [build, test, deploy]
variables:
  GREETING: hello
build:
  stage: build
  script:
    - ./printer.sh
lint:
  stage: test
  allow_failure: true
  script:
    - echo "lint says no"
    - exit 3
unit:
  stage: test
  script:
    - echo "$GREETING from $CI_JOB_NAME at $CI_COMMIT_SHA"
deploy:
  stage: deploy
  script: [echo deploy]
  after_script: [echo cleanup]
notify-failure:
  stage: deploy
  when: on_failure
  script: [echo failure]
"""


def test_pipeline_runs_and_stores_every_byte(server_process, admin, start_runner, tmp_path: Path) -> None:  # noqa: ANN001
    sha = make_repo(tmp_path / "repo", PIPELINE, {"printer.sh": PRINTER})
    project = admin.project(str(tmp_path / "repo"))
    runner = start_runner(server_process.url, admin.runner_token())
    pipeline = admin.pipeline(project["id"])
    assert pipeline["sha"] == sha

    final = admin.wait(project["id"], pipeline["id"])

    jobs = admin.jobs(project["id"], pipeline["id"])
    assert final["status"] == "success"
    assert {name: job["status"] for name, job in jobs.items()} == {
        "build": "success", "lint": "failed", "unit": "success", "deploy": "success", "notify-failure": "skipped",
    }
    assert jobs["lint"]["failure_reason"] == "script_failure" and jobs["lint"]["exit_code"] == 3

    build = jobs["build"]
    printed = (runner.builds_dir.rglob(f"printed-{build['id']}.txt")).__next__().read_bytes()
    assert len(printed) > 3 * 128 * 1024
    log = admin.trace(project["id"], build["id"])
    assert printed in log, "the stored log must hold exactly what the job printed"
    assert len(log) == build["trace_size"]
    unit_log = admin.trace(project["id"], jobs["unit"]["id"]).decode()
    assert f"hello from unit at {sha}" in unit_log
    deploy_log = admin.trace(project["id"], jobs["deploy"]["id"]).decode()
    assert "cleanup" in deploy_log
    assert "lint says no" in admin.trace(project["id"], jobs["lint"]["id"]).decode()
    assert build["trace_checksum"] == f"crc32:{zlib.crc32(log):08x}"
    # regression: structlog printed to stdout, a pipe nobody reads after the ready line, so a busy
    # server would block once the pipe filled. stdout must carry nothing but that line.
    assert server_process.stop() == b""
