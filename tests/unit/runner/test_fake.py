from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from conveyor.runner.executors.base import ExecutorContext
from conveyor.runner.executors.fake import FakeExecutor, fake_output

pytestmark = pytest.mark.unit


def fake(job_factory, tmp_path: Path, **variables: str) -> FakeExecutor:
    job = job_factory(variables=[{"key": k, "value": v} for k, v in variables.items()])
    return FakeExecutor(ExecutorContext(job, tmp_path, tmp_path / "p", tmp_path / "p.tmp"))


async def test_follows_job_variables(job_factory, tmp_path: Path) -> None:
    executor = fake(job_factory, tmp_path, FAKE_EXIT_CODE="3", FAKE_OUTPUT_BYTES="100000")
    await executor.prepare()
    out = bytearray()
    result = await executor.run("ignored", stage="step_script", timeout=10, output=out.extend)
    assert result.exit_code == 3
    assert bytes(out) == fake_output(100000) and len(out) == 100000
    other = await executor.run("ignored", stage="get_sources", timeout=10, output=out.extend)
    assert other.exit_code == 0
    await executor.cleanup()


async def test_sleep_honours_timeout_and_cancel(job_factory, tmp_path: Path) -> None:
    executor = fake(job_factory, tmp_path, FAKE_SLEEP="300")
    result = await executor.run("", stage="step_script", timeout=0.05, output=lambda _: None)
    assert result.timed_out
    cancel = asyncio.Event()
    cancel.set()
    result = await executor.run("", stage="step_script", timeout=300, output=lambda _: None, cancel=cancel)
    assert result.canceled
