"""The runner resynchronises its trace with a coordinator that lost, kept or invented bytes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from conveyor.runner import ShellExecutor, run
from conveyor.runner.settings import RunnerSettings
from tests.integration.runner.fake_coordinator import Canned, Coordinator, crc, eventually, job_payload

pytestmark = pytest.mark.integration
SHELL = {"shell": ShellExecutor}


def two_phase_script(go: Path) -> list[str]:
    return [
        "echo phase1",
        f"while [ ! -f {go} ]; do sleep 0.02; done",
        "for i in $(seq 1 200); do echo phase2 line $i; done",
    ]


def assert_log_intact(coordinator: Coordinator, settings: RunnerSettings, job_id: int) -> bytes:
    stored = coordinator.trace(job_id)
    assert stored == (settings.trace_dir / f"job-{job_id}.log").read_bytes()
    assert coordinator.job(job_id).final["output"] == {"checksum": crc(stored), "bytesize": len(stored)}
    return stored


async def test_server_lost_the_tail_of_the_last_chunk(
    coordinator: Coordinator, settings: RunnerSettings, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    coordinator.add_job(job_payload(2001, two_phase_script(go)))
    runner = asyncio.create_task(run(settings, max_jobs=1, executors=SHELL))
    await eventually(lambda: b"phase1\n" in coordinator.trace(2001), what="phase1 in the stored trace")
    kept = len(coordinator.trace(2001)) - 5
    coordinator.truncate(2001, kept)  # e.g. the server restarted and lost unpersisted bytes
    go.touch()
    await runner
    job = coordinator.job(2001)
    assert 416 in job.patch_statuses
    resent = [p for p in coordinator.recorded("PATCH", "/jobs/2001/trace")
              if p.headers["content-range"].startswith(f"{kept}-")]  # fmt: skip
    assert resent, "the runner resent from the server's offset"
    stored = assert_log_intact(coordinator, settings, 2001)
    assert stored.count(b"phase2 line 200\n") == 1
    assert job.status == "success"


async def test_lost_response_server_already_has_the_chunk(
    coordinator: Coordinator, settings: RunnerSettings, tmp_path: Path
) -> None:
    # The first PATCH is stored, but its answer is a 500; the identical retry gets a 416 whose
    # Range says the server is already further than the runner thought (spec example 7).
    coordinator.canned.append(Canned("PATCH", "/jobs/2002/trace", 500, after_normal=True))
    go = tmp_path / "go"
    coordinator.add_job(job_payload(2002, two_phase_script(go)))
    runner = asyncio.create_task(run(settings, max_jobs=1, executors=SHELL))
    await eventually(lambda: 416 in coordinator.job(2002).patch_statuses, what="a 416")
    go.touch()
    await runner
    statuses = coordinator.job(2002).patch_statuses
    assert statuses[:2] == [500, 416]
    stored = assert_log_intact(coordinator, settings, 2002)
    assert stored.count(b"phase1\n") == 1  # nothing duplicated
    assert coordinator.job(2002).status == "success"


async def test_server_claiming_more_than_produced_is_reset_by_a_412(
    coordinator: Coordinator, settings: RunnerSettings
) -> None:
    coordinator.add_job(job_payload(2003, ["echo one", "echo two"]), claim_offset=10**9, reset_on_mismatch=True)
    await run(settings, max_jobs=1, executors=SHELL)
    job = coordinator.job(2003)
    assert job.patch_statuses[0] == 416
    finals = [p for p in job.puts if p["state"] == "success"]
    assert len(finals) == 2  # 412 (trace discarded), then 200 after resending everything from 0
    first_patch_after_reset = [p for p in coordinator.recorded("PATCH", "/jobs/2003/trace")][-1]
    assert first_patch_after_reset.headers["content-range"].startswith("0-")
    assert_log_intact(coordinator, settings, 2003)
    assert job.status == "success"
