"""The polling loop: last_update, health back-off, undecodable jobs, stopping."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest
import structlog

from conveyor.runner import FakeExecutor, SettingsError, run
from conveyor.runner.settings import RunnerSettings
from tests.integration.runner.fake_coordinator import Canned, Coordinator, eventually, job_payload

pytestmark = pytest.mark.integration
FAKE = {"shell": FakeExecutor}


async def test_last_update_is_echoed_and_kept(coordinator: Coordinator, settings: RunnerSettings) -> None:
    coordinator.canned += [
        Canned("POST", "/jobs/request", 204, {"X-GitLab-Last-Update": "v1"}),
        Canned("POST", "/jobs/request", 204),
    ]
    coordinator.add_job(job_payload(6001, ["true"]))
    await run(settings, max_jobs=1, executors=FAKE)
    sent = [r.json().get("last_update") for r in coordinator.recorded("POST", "/jobs/request")]
    assert sent == [None, "v1", "v1"]


async def test_polls_again_after_each_job(coordinator: Coordinator, settings: RunnerSettings) -> None:
    for job_id in (6002, 6003, 6004):
        coordinator.add_job(job_payload(job_id, ["true"]))
    await run(settings, max_jobs=3, executors=FAKE)
    assert [coordinator.job(j).status for j in (6002, 6003, 6004)] == ["success"] * 3
    assert len(coordinator.recorded("POST", "/jobs/request")) == 3


async def test_three_403s_make_the_runner_pause(coordinator: Coordinator, settings: RunnerSettings) -> None:
    coordinator.canned += [Canned("POST", "/jobs/request", 403) for _ in range(3)]
    stop = asyncio.Event()
    with structlog.testing.capture_logs() as logs:
        runner = asyncio.create_task(run(settings, stop=stop, executors=FAKE))
        await eventually(lambda: any(e["event"] == "runner is unhealthy; pausing" for e in logs), what="pause")
        assert len(coordinator.recorded("POST", "/jobs/request")) == 3
        stop.set()
        await runner


async def test_a_success_resets_the_unhealthy_count(coordinator: Coordinator, settings: RunnerSettings) -> None:
    coordinator.canned += [Canned("POST", "/jobs/request", 403), Canned("POST", "/jobs/request", 403),
                           Canned("POST", "/jobs/request", 204), Canned("POST", "/jobs/request", 403)]  # fmt: skip
    coordinator.add_job(job_payload(6005, ["true"]))
    with structlog.testing.capture_logs() as logs:
        await run(settings, max_jobs=1, executors=FAKE)
    assert not any(e["event"] == "runner is unhealthy; pausing" for e in logs)
    assert coordinator.job(6005).status == "success"


async def test_undecodable_job_is_failed_on_the_coordinator(coordinator: Coordinator, settings: RunnerSettings) -> None:
    broken = job_payload(6006, ["true"])
    del broken["git_info"]
    job = coordinator.add_job(job_payload(6006, ["true"]))
    job.status = "running"
    coordinator.queue.clear()
    coordinator.canned.append(Canned("POST", "/jobs/request", 201, {"Content-Type": "application/json"},
                                     json.dumps(broken).encode()))  # fmt: skip
    coordinator.add_job(job_payload(6007, ["true"]))
    await run(settings, max_jobs=1, executors=FAKE)
    puts = coordinator.job(6006).puts
    assert [(p["state"], p.get("failure_reason")) for p in puts] == [("failed", "runner_system_failure")]
    assert coordinator.job(6007).status == "success"


async def test_stop_interrupts_a_long_poll(coordinator: Coordinator, settings: RunnerSettings) -> None:
    coordinator.hold_job_requests.set()
    stop = asyncio.Event()
    runner = asyncio.create_task(run(settings, stop=stop, executors=FAKE))
    try:
        await eventually(lambda: coordinator.recorded("POST", "/jobs/request"), what="a held poll")
        stop.set()
        await runner
    finally:
        coordinator.hold_job_requests.clear()


async def test_stop_lets_the_running_job_finish(coordinator: Coordinator, settings: RunnerSettings) -> None:
    coordinator.add_job(job_payload(6008, ["true"], variables=[{"key": "FAKE_SLEEP", "value": "300"}]))
    stop = asyncio.Event()
    runner = asyncio.create_task(run(settings, stop=stop, executors=FAKE))
    await eventually(lambda: coordinator.job(6008).puts, what="job acknowledged")
    stop.set()
    await asyncio.sleep(0.2)
    assert not runner.done()  # still running the job
    coordinator.set_status(6008, "canceling")  # end it the graceful way
    await runner
    assert coordinator.job(6008).status == "canceled"
    assert len(coordinator.recorded("POST", "/jobs/request")) == 1


async def test_rejected_token_fails_at_startup(settings: RunnerSettings) -> None:
    with pytest.raises(SettingsError, match="rejected the runner token"):
        await run(dataclasses.replace(settings, token="glrt-nope"), max_jobs=1, executors=FAKE)


async def test_unknown_executor_fails_at_startup(settings: RunnerSettings) -> None:
    with pytest.raises(SettingsError, match="unknown executor 'docker'"):
        await run(dataclasses.replace(settings, executor="docker"), max_jobs=1, executors=FAKE)


async def test_nulls_in_the_payload_decode_as_zero_values(coordinator: Coordinator, settings: RunnerSettings) -> None:
    payload = job_payload(6009, ["true"])
    payload.update(artifacts=None, services=None, cache=None, dependencies=None, hooks=None, image=None)
    payload["git_info"].update(refspecs=None, before_sha=None, protected=None)
    payload["runner_info"]["runner_session_url"] = None
    job = coordinator.add_job(job_payload(6009, ["true"]))
    coordinator.queue.clear()
    job.status = "running"
    coordinator.canned.append(Canned("POST", "/jobs/request", 201, {"Content-Type": "application/json"},
                                     json.dumps(payload).encode()))  # fmt: skip
    await run(settings, max_jobs=1, executors=FAKE)
    assert coordinator.job(6009).status == "success"


async def test_undecodable_json_is_not_fatal(coordinator: Coordinator, settings: RunnerSettings) -> None:
    coordinator.canned.append(Canned("POST", "/jobs/request", 201, {"Content-Type": "application/json"}, b"{not json"))
    coordinator.add_job(job_payload(6010, ["true"]))
    await run(settings, max_jobs=1, executors=FAKE)
    assert coordinator.job(6010).status == "success"
