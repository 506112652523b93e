"""Per-line timestamps end to end: every stored line has the header, secrets stay masked."""

from __future__ import annotations

import dataclasses
import re

import pytest

from conveyor.runner import ShellExecutor, run
from conveyor.runner.settings import RunnerSettings
from tests.integration.runner.fake_coordinator import Coordinator, job_payload

pytestmark = pytest.mark.integration
HEADER = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z (00|01)O[ +]")


async def test_timestamped_log(coordinator: Coordinator, settings: RunnerSettings) -> None:
    secret = {"key": "SECRET", "value": "t1mest4mped-secret", "public": False, "masked": True}
    coordinator.add_job(job_payload(7001, ["echo out $SECRET", "printf 'no newline'"], variables=[secret]))
    coordinator.add_job(job_payload(7002, ["echo plain"], variables=[
        {"key": "FF_TIMESTAMPS", "value": "false", "public": True, "masked": False}]))  # fmt: skip
    await run(dataclasses.replace(settings, timestamps=True), max_jobs=2, executors={"shell": ShellExecutor})

    lines = [line + b"\n" for line in coordinator.trace(7001).split(b"\n")[:-1]]
    assert lines and all(HEADER.match(line) for line in lines), [l for l in lines if not HEADER.match(l)][:3]
    assert any(re.match(rb".{27} 01O out \[MASKED\]\n", line) for line in lines)
    assert any(line[28:32] == b"00O " and b"Running with conveyor-runner" in line for line in lines)
    assert b"t1mest4mped" not in coordinator.trace(7001)
    assert coordinator.trace(7002).startswith(b"\x1b[0KRunning with"), "FF_TIMESTAMPS=false turns them off"
