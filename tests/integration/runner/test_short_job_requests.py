"""A short job costs the coordinator four requests; a long one still shows its log while it runs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from conveyor.runner import ShellExecutor, run
from conveyor.runner.settings import RunnerSettings
from tests.integration.runner.fake_coordinator import Coordinator, CoordinatorServer, crc, job_payload

pytestmark = pytest.mark.integration


@pytest.fixture
def server() -> Iterator[CoordinatorServer]:
    server = CoordinatorServer(Coordinator(update_interval="3"))  # GitLab's interval while watched
    server.start()
    yield server
    server.close()


async def run_job(coordinator: Coordinator, settings: RunnerSettings, job_id: int, script: list[str]) -> list[str]:
    coordinator.add_job(job_payload(job_id, script))
    await run(dataclasses.replace(settings, update_interval=3.0), max_jobs=1, executors={"shell": ShellExecutor})
    job = coordinator.job(job_id)
    assert job.status == "success"
    assert job.final is not None and job.final["output"]["checksum"] == crc(bytes(job.trace))
    return [f"{r.method} {r.path}" for r in coordinator.requests if r.path.startswith(f"/api/v4/jobs/{job_id}")]


async def test_a_short_job_sends_its_whole_log_in_one_patch(coordinator: Coordinator, settings: RunnerSettings) -> None:
    calls = await run_job(coordinator, settings, 3001, ["echo one", "sleep 0.1", "echo three"])
    assert calls == ["PUT /api/v4/jobs/3001", "PATCH /api/v4/jobs/3001/trace", "PUT /api/v4/jobs/3001"]
    log = coordinator.trace(3001).decode()
    assert log.startswith("\x1b[0KRunning with conveyor-runner ") and "\nthree\n" in log


async def test_a_longer_job_shows_its_header_while_it_runs(coordinator: Coordinator, settings: RunnerSettings) -> None:
    calls = await run_job(coordinator, settings, 3002, ["echo first", "sleep 1.5", "echo second"])
    assert calls[:2] == ["PUT /api/v4/jobs/3002", "PATCH /api/v4/jobs/3002/trace"]
    assert calls[-1] == "PUT /api/v4/jobs/3002" and calls.count("PUT /api/v4/jobs/3002") == 2
    first = next(r for r in coordinator.requests if r.path == "/api/v4/jobs/3002/trace")
    assert b"Running with conveyor-runner" in first.body and b"second" not in first.body
