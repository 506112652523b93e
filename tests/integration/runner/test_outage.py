"""The coordinator goes away mid-job (connections reset, then refused) and comes back."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from conveyor.runner import ShellExecutor, run
from conveyor.runner.settings import RunnerSettings
from tests.integration.runner.fake_coordinator import Coordinator, CoordinatorServer, crc, eventually, job_payload

pytestmark = pytest.mark.integration


async def test_outage_during_the_job_and_the_final_update_loses_nothing(
    server: CoordinatorServer, coordinator: Coordinator, settings: RunnerSettings, tmp_path: Path
) -> None:
    settings = dataclasses.replace(settings, final_update_backoff=0.05)
    go, finish = tmp_path / "go", tmp_path / "finish"
    script = [
        "echo phase1",
        f"while [ ! -f {go} ]; do sleep 0.02; done",
        "for i in $(seq 1 500); do echo phase2 line $i; done",
        f"while [ ! -f {finish} ]; do sleep 0.02; done",
        "echo phase3",
    ]
    coordinator.add_job(job_payload(3001, script))
    runner = asyncio.create_task(run(settings, max_jobs=1, executors={"shell": ShellExecutor}))
    await eventually(lambda: b"phase1\n" in coordinator.trace(3001), what="phase1 stored")

    outage = server.start_outage()  # from now on every connection is reset
    go.touch()  # more output while the coordinator is down: PATCHes fail on every tick
    await eventually(lambda: outage.resets >= 3, what="PATCH attempts during the outage")
    finish.touch()  # the job ends while the coordinator is still down: the final update retries
    spool = settings.trace_dir / "job-3001.log"
    await eventually(lambda: spool.exists() and b"Job succeeded" in spool.read_bytes(), what="job end")
    seen = outage.resets
    await eventually(lambda: outage.resets >= seen + 3, what="final update attempts during the outage")
    # The restarted server also lost the last few bytes it had acknowledged before going down.
    coordinator.truncate(3001, len(coordinator.trace(3001)) - 3)
    server.end_outage()
    await runner

    job = coordinator.job(3001)
    stored = coordinator.trace(3001)
    assert stored == spool.read_bytes()
    assert stored.count(b"phase2 line 500\n") == 1 and b"phase3\n" in stored
    assert job.final["output"] == {"checksum": crc(stored), "bytesize": len(stored)}
    assert job.status == "success"
    assert 416 in job.patch_statuses


async def test_outage_between_jobs_keeps_polling(
    server: CoordinatorServer, coordinator: Coordinator, settings: RunnerSettings
) -> None:
    runner = asyncio.create_task(run(settings, max_jobs=1, executors={"shell": ShellExecutor}))
    await eventually(lambda: coordinator.recorded("POST", "/jobs/request"), what="first poll")
    outage = server.start_outage()
    await eventually(lambda: outage.resets >= 3, what="polls during the outage")
    coordinator.add_job(job_payload(3002, ["echo back"]))
    server.end_outage()
    await runner
    assert coordinator.job(3002).status == "success"
    assert b"back\n" in coordinator.trace(3002)
