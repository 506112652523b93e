"""Graceful cancel (Job-Status: canceling) and hard abort (403 / Job-Status: canceled)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from conveyor.runner import ShellExecutor, run
from conveyor.runner.settings import RunnerSettings
from tests.plugins.processes import alive
from tests.integration.runner.fake_coordinator import Coordinator, crc, eventually, job_payload

pytestmark = pytest.mark.integration
SHELL = {"shell": ShellExecutor}


async def test_canceling_interrupts_the_script_and_runs_after_script(
    coordinator: Coordinator, settings: RunnerSettings, tmp_path: Path
) -> None:
    pidfile = tmp_path / "sleep.pid"
    coordinator.add_job(job_payload(
        4001,
        ["echo started", f"sleep 300 & echo $! > {pidfile}; wait"],
        after_script=['echo "after_script sees $CI_JOB_STATUS"'],
    ))  # fmt: skip
    runner = asyncio.create_task(run(settings, max_jobs=1, executors=SHELL))
    await eventually(lambda: b"started\n" in coordinator.trace(4001) and pidfile.exists(), what="script running")
    coordinator.set_status(4001, "canceling")  # a user pressed cancel; the runner advertised cancel_gracefully
    await runner

    job = coordinator.job(4001)
    assert (job.final["state"], job.final["failure_reason"]) == ("failed", "unknown_failure")
    assert job.status == "canceled"
    stored = coordinator.trace(4001)
    assert stored == (settings.trace_dir / "job-4001.log").read_bytes()
    assert job.final["output"] == {"checksum": crc(stored), "bytesize": len(stored)}
    text = stored.decode()
    assert "WARNING: script canceled externally (UI, API)" in text
    assert "after_script sees canceled\n" in text
    assert text.index("canceled externally") < text.index("after_script sees")
    assert not alive(int(pidfile.read_text()))


async def test_403_aborts_at_once_without_after_script(
    coordinator: Coordinator, settings: RunnerSettings, tmp_path: Path
) -> None:
    pidfile, marker = tmp_path / "sleep.pid", tmp_path / "after-ran"
    coordinator.add_job(job_payload(
        4002, ["echo started", f"sleep 300 & echo $! > {pidfile}; wait"], after_script=[f"touch {marker}"]
    ))  # fmt: skip
    runner = asyncio.create_task(run(settings, max_jobs=1, executors=SHELL))
    await eventually(lambda: b"started\n" in coordinator.trace(4002) and pidfile.exists(), what="script running")
    coordinator.set_status(4002, "canceled")  # canceled without cancel_gracefully: 403 + Job-Status
    await runner

    assert not alive(int(pidfile.read_text()))
    assert not marker.exists()
    job = coordinator.job(4002)
    assert job.final is None  # every PUT after the abort was refused
    spool = (settings.trace_dir / "job-4002.log").read_bytes()
    assert b"Running after_script" not in spool


async def test_canceling_at_acknowledgement_runs_nothing(
    coordinator: Coordinator, settings: RunnerSettings, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    coordinator.add_job(job_payload(4003, [f"touch {marker}"]), status="canceling")
    await run(settings, max_jobs=1, executors=SHELL)
    assert not marker.exists()
    job = coordinator.job(4003)
    assert (job.final["state"], job.final["failure_reason"]) == ("failed", "unknown_failure")
    assert job.status == "canceled"
    assert b"script canceled externally" in coordinator.trace(4003)


async def test_abort_at_acknowledgement_drops_the_job(
    coordinator: Coordinator, settings: RunnerSettings, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    coordinator.add_job(job_payload(4004, [f"touch {marker}"]), status="canceled")
    await run(settings, max_jobs=1, executors=SHELL)
    assert not marker.exists()
    assert coordinator.recorded("PATCH", "/jobs/4004/trace") == []
    assert len(coordinator.recorded("PUT", "/jobs/4004")) == 1


async def test_runner_abort_reports_runner_interrupted(
    coordinator: Coordinator, settings: RunnerSettings, tmp_path: Path
) -> None:
    pidfile = tmp_path / "sleep.pid"
    coordinator.add_job(job_payload(4005, [f"sleep 300 & echo $! > {pidfile}; wait"]))
    stop, abort = asyncio.Event(), asyncio.Event()
    runner = asyncio.create_task(run(settings, stop=stop, abort=abort, executors=SHELL))
    await eventually(lambda: pidfile.exists() and pidfile.read_text().strip(), what="script running")
    stop.set()  # first signal: keep running the job
    abort.set()  # second signal: abort it
    await runner
    assert not alive(int(pidfile.read_text()))
    job = coordinator.job(4005)
    assert (job.final["state"], job.final["failure_reason"]) == ("failed", "unknown_failure")
    assert b"job interrupted" in coordinator.trace(4005)
