"""CoordinatorClient against real HTTP: typed results, headers and the retry layer."""

from __future__ import annotations

import dataclasses
import socket

import pytest

from conveyor.protocol.models import JobOutput
from conveyor.runner import CoordinatorClient, PatchKind, RetryPolicy, UpdateKind
from conveyor.runner.client import api_base
from conveyor.runner.settings import RunnerSettings
from tests.integration.runner.fake_coordinator import RUNNER_TOKEN, Canned, Coordinator, job_payload

pytestmark = pytest.mark.integration
FAST = RetryPolicy(backoff_min=0.001, backoff_max=0.01)


@pytest.fixture
async def client(settings: RunnerSettings):
    async with CoordinatorClient(settings, retry=FAST) as client:
        yield client


@pytest.fixture
def running_job(coordinator: Coordinator) -> int:
    job = coordinator.add_job(job_payload(5001, ["true"]))
    job.status = "running"
    coordinator.queue.clear()
    return 5001


TOKEN = "glcbt-job5001token"


def test_api_base() -> None:
    assert api_base("https://gitlab.example.com/") == "https://gitlab.example.com/api/v4/"
    assert api_base("https://gitlab.example.com/ci") == "https://gitlab.example.com/api/v4/"
    assert api_base("https://example.com/gitlab/ci/") == "https://example.com/gitlab/api/v4/"


async def test_patch_results(client: CoordinatorClient, coordinator: Coordinator, running_job: int) -> None:
    accepted = await client.patch_trace(running_job, TOKEN, 0, b"hello\n")
    assert (accepted.kind, accepted.server_offset, accepted.job_status) == (PatchKind.ACCEPTED, 6, "running")
    assert accepted.update_interval == 0.05
    mismatch = await client.patch_trace(running_job, TOKEN, 0, b"hello\n")
    assert (mismatch.kind, mismatch.server_offset) == (PatchKind.RANGE_MISMATCH, 6)
    coordinator.set_status(running_job, "canceling")
    canceling = await client.patch_trace(running_job, TOKEN, 6, b"more\n")
    assert canceling.kind is PatchKind.ACCEPTED and canceling.cancel_requested
    coordinator.set_status(running_job, "canceled")
    aborted = await client.patch_trace(running_job, TOKEN, 11, b"x")
    assert aborted.kind is PatchKind.ABORT and aborted.job_status == "canceled"
    missing = await client.patch_trace(99999, TOKEN, 0, b"x")
    assert missing.kind is PatchKind.NOT_FOUND


async def test_416_without_range_means_offset_zero(
    client: CoordinatorClient, coordinator: Coordinator, running_job: int
) -> None:
    coordinator.canned.append(Canned("PATCH", "/trace", 416))
    result = await client.patch_trace(running_job, TOKEN, 40, b"x")
    assert (result.kind, result.server_offset) == (PatchKind.RANGE_MISMATCH, 0)


@pytest.mark.parametrize(
    ("status", "headers", "kind"),
    [
        (200, {}, UpdateKind.SUCCEEDED),
        (202, {"X-GitLab-Trace-Update-Interval": "7"}, UpdateKind.ACCEPTED),
        (412, {}, UpdateKind.RESET),
        (403, {}, UpdateKind.ABORT),
        (404, {}, UpdateKind.ABORT),
        (200, {"Job-Status": "canceled"}, UpdateKind.ABORT),
        (200, {"Job-Status": "failed"}, UpdateKind.ABORT),
        (409, {}, UpdateKind.FAILED),
        (400, {}, UpdateKind.FAILED),
    ],
)
async def test_update_results(
    client: CoordinatorClient, coordinator: Coordinator, running_job: int, status: int, headers: dict, kind: UpdateKind
) -> None:
    coordinator.canned.append(Canned("PUT", f"/jobs/{running_job}", status, headers))
    result = await client.update_job(running_job, TOKEN, "running", JobOutput(checksum="crc32:00000000", bytesize=0))
    assert result.kind is kind
    if status == 202:
        assert result.update_interval == 7.0


async def test_update_interval_is_capped_and_canceling_is_reported(
    client: CoordinatorClient, coordinator: Coordinator, running_job: int
) -> None:
    coordinator.canned.append(Canned("PUT", "/jobs/5001", 200, {"X-GitLab-Trace-Update-Interval": "99999",
                                                               "Job-Status": "canceling"}))  # fmt: skip
    result = await client.update_job(running_job, TOKEN, "running")
    assert result.kind is UpdateKind.SUCCEEDED and result.cancel_requested
    assert result.update_interval == 900.0


async def test_final_update_body(client: CoordinatorClient, coordinator: Coordinator, running_job: int) -> None:
    output = JobOutput(checksum="crc32:0000abcd", bytesize=0)
    await client.update_job(running_job, TOKEN, "failed", output, failure_reason="script_failure", exit_code=2)
    body = coordinator.recorded("PUT", "/jobs/5001")[-1].json()
    assert body["state"] == "failed" and body["failure_reason"] == "script_failure" and body["exit_code"] == 2
    assert body["checksum"] == "crc32:0000abcd" and body["output"] == {"checksum": "crc32:0000abcd", "bytesize": 0}
    await client.update_job(running_job, TOKEN, "success", output, exit_code=0)
    body = coordinator.recorded("PUT", "/jobs/5001")[-1].json()
    assert "exit_code" not in body and "failure_reason" not in body


async def test_retry_layer_retries_5xx_and_429(
    client: CoordinatorClient, coordinator: Coordinator, running_job: int
) -> None:
    coordinator.canned += [Canned("PATCH", "/trace", 503), Canned("PATCH", "/trace", 429, {"Retry-After": "0"})]
    result = await client.patch_trace(running_job, TOKEN, 0, b"abc")
    assert result.kind is PatchKind.ACCEPTED
    attempts = coordinator.recorded("PATCH", "/trace")
    assert len(attempts) == 3
    assert {a.body for a in attempts} == {b"abc"}
    assert len({a.headers["x-request-id"] for a in attempts}) == 1


async def test_retry_layer_gives_up_after_5_attempts(
    client: CoordinatorClient, coordinator: Coordinator, running_job: int
) -> None:
    coordinator.canned += [Canned("PUT", "/jobs/5001", 502) for _ in range(6)]
    result = await client.update_job(running_job, TOKEN, "running")
    assert result.kind is UpdateKind.FAILED
    assert len(coordinator.recorded("PUT", "/jobs/5001")) == 5


async def test_network_errors_are_failed_results(settings: RunnerSettings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = dataclasses.replace(settings, url=f"http://127.0.0.1:{port}")
    async with CoordinatorClient(settings, retry=FAST) as client:
        assert (await client.patch_trace(1, "t", 0, b"x")).kind is PatchKind.FAILED
        assert (await client.update_job(1, "t", "running")).kind is UpdateKind.FAILED
        polled = await client.request_job("lu")
        assert polled.job is None and polled.healthy and polled.last_update == "lu" and polled.error
        verified = await client.verify()
        assert verified.valid and verified.error


async def test_job_request_results(client: CoordinatorClient, coordinator: Coordinator) -> None:
    empty = await client.request_job(None)
    assert (empty.job, empty.last_update, empty.healthy) == (None, "lu-0", True)
    coordinator.canned.append(Canned("POST", "/jobs/request", 204))
    kept = await client.request_job("previous")
    assert kept.last_update == "previous"
    coordinator.add_job(job_payload(5002, ["true"]))
    got = await client.request_job("lu-0")
    assert got.job is not None and got.job.id == 5002 and got.job.token == "glcbt-job5002token"
    coordinator.canned.append(Canned("POST", "/jobs/request", 201, {"Content-Type": "text/plain"}, b"{}"))
    wrong_type = await client.request_job(None)
    assert wrong_type.job is None and "application/json" in (wrong_type.error or "")
    coordinator.canned.append(Canned("POST", "/jobs/request", 403))
    forbidden = await client.request_job(None)
    assert not forbidden.healthy
    coordinator.canned.append(Canned("POST", "/jobs/request", 409))
    conflict = await client.request_job(None)
    assert conflict.healthy and conflict.job is None


async def test_verify(client: CoordinatorClient, settings: RunnerSettings) -> None:
    result = await client.verify()
    assert result.valid and result.details is not None and result.details.id == 42
    bad = dataclasses.replace(settings, token="glrt-wrong")
    async with CoordinatorClient(bad) as other:
        assert not (await other.verify()).valid
    assert RUNNER_TOKEN == settings.token


async def test_answered_requests_are_counted_by_endpoint_and_status(
    settings: RunnerSettings, coordinator: Coordinator, running_job: int
) -> None:
    from conveyor.runner.metrics import Metrics

    metrics = Metrics()
    async with CoordinatorClient(settings, retry=FAST, metrics=metrics) as client:
        await client.patch_trace(running_job, TOKEN, 0, b"hello\n", debug_trace=True)
        await client.patch_trace(running_job, TOKEN, 0, b"hello\n")  # 416: already there
        await client.update_job(running_job, TOKEN, "running")
    assert coordinator.recorded("PATCH", "/trace")[0].query == "debug_trace=true"
    assert metrics.value("conveyor_runner_requests_total", endpoint="PATCH jobs/:id/trace", status="202") == 1
    assert metrics.value("conveyor_runner_requests_total", endpoint="PATCH jobs/:id/trace", status="416") == 1
    assert metrics.value("conveyor_runner_requests_total", endpoint="PUT jobs/:id", status="200") == 1
    assert 'conveyor_runner_requests_total{endpoint="PUT jobs/:id",status="200"} 1' in metrics.render()
