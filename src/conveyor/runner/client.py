"""CoordinatorClient: the only HTTP code of the runner (GitLab runner API v4).

One ``httpx.AsyncClient`` per process, on a transport whose every TCP connection sets
SO_KEEPALIVE and the configured probe timing. Every request passes through a small retry layer
(runner-api.md section 1.3: 408/429/5xx, ``Retry-After``, at most 5 attempts, exponential
backoff with jitter). Network errors are never retried here: the callers own that decision and
get a ``FAILED`` result.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import random
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pydantic
import structlog

from conveyor.protocol import headers, keepalive
from conveyor.protocol.models import (
    JobOutput,
    JobPayload,
    JobRequest,
    RegistrationDetails,
    RunnerInfo,
    UpdateJobRequest,
    VerifyRunnerRequest,
)
from conveyor.protocol.trace import content_range, parse_range
from conveyor.runner import info as runner_info
from conveyor.runner.lean_http import Answer, LeanHttp
from conveyor.runner.metrics import Metrics
from conveyor.runner.results import (
    ArtifactResult,
    JobRequestResult,
    PatchKind,
    PatchResult,
    RejectedJob,
    UpdateKind,
    UpdateResult,
    VerifyResult,
)
from conveyor.runner.settings import MAX_UPDATE_INTERVAL, RunnerSettings

log = structlog.get_logger(__name__)

_ABORT_STATUSES = ("canceled", "failed")


def remember_missing_modules(names: tuple[str, ...] = ("sniffio",)) -> None:
    """Record optional modules that are not installed as missing, once.

    httpcore runs ``import sniffio`` on every request (twice); without sniffio installed (anyio 4
    no longer needs it) each failed import searches ``sys.path`` again: a third of the runner's
    HTTP CPU. ``None`` in ``sys.modules`` makes the import fail at once, as it would anyway.
    """
    for name in names:
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            sys.modules[name] = None  # type: ignore[assignment]


remember_missing_modules()


@dataclass(frozen=True)
class RetryPolicy:
    """HTTP-level retries (gitlab-runner ``network/retry_requester.go``)."""

    max_attempts: int = 5
    backoff_min: float = 0.1
    backoff_max: float = 60.0
    max_wait: float = 15 * 60.0

    @staticmethod
    def retryable(status: int) -> bool:
        return status in (408, 429, 500, 502, 503, 504) or status >= 512

    def delay(self, attempt: int, response: httpx.Response | Answer) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        reset = response.headers.get("RateLimit-ResetTime")
        if reset:
            try:
                until = parsedate_to_datetime(reset)
                return min(max((until - datetime.now(timezone.utc)).total_seconds(), 0.0), self.max_wait)
            except (TypeError, ValueError):
                pass
        retry_after = response.headers.get(headers.RETRY_AFTER, "").strip()
        if retry_after.isdigit():
            return min(float(retry_after), self.max_wait)
        base = min(self.backoff_min * 2 ** (attempt - 1), self.backoff_max)
        return base * random.uniform(0.5, 1.5)


def api_base(url: str) -> str:
    """``<url>/api/v4/`` with trailing slashes and a legacy ``/ci`` suffix removed."""
    url = url.rstrip("/")
    if url.endswith("/ci"):
        url = url[: -len("/ci")]
    return url.rstrip("/") + "/api/v4/"


class CoordinatorClient:
    """Typed calls to a GitLab-compatible coordinator. Use as an async context manager."""

    def __init__(
        self,
        settings: RunnerSettings,
        info: RunnerInfo | None = None,
        *,
        retry: RetryPolicy | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics or Metrics()
        self._info = info or runner_info.runner_info(settings.executor, cancel_gracefully=settings.cancel_gracefully)
        self._retry = retry or RetryPolicy()
        # limits go to the transport: a client given its own transport ignores its ``limits``
        transport = httpx.AsyncHTTPTransport(
            socket_options=keepalive.socket_options(settings.keepalive), retries=0,
            limits=httpx.Limits(keepalive_expiry=settings.pool_idle_timeout),
        )
        self._base = api_base(settings.url)
        self._http = httpx.AsyncClient(
            base_url=self._base,
            transport=transport,
            timeout=httpx.Timeout(settings.request_timeout, connect=30.0),
            headers={"User-Agent": runner_info.user_agent()},
            follow_redirects=False,
        )
        # The runner sends Accept only where it expects JSON back.
        del self._http.headers["Accept"]
        # the per-job calls: the same pool settings, without httpx's models around each request
        self._lean = LeanHttp(
            user_agent=runner_info.user_agent(), timeout=settings.request_timeout, connect_timeout=30.0,
            keepalive_expiry=settings.pool_idle_timeout, socket_options=keepalive.socket_options(settings.keepalive),
        )  # fmt: skip

    async def __aenter__(self) -> CoordinatorClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._lean.aclose()
        await self._http.aclose()

    @property
    def info(self) -> RunnerInfo:
        return self._info

    async def _send(self, method: str, path: str, headers: dict[str, str], content: bytes) -> Answer:
        """One call through the retry layer; raises ``httpx.HTTPError`` on network errors.

        ``path`` is relative to the API base, its query included.
        """
        request_headers = {"X-Request-Id": uuid.uuid4().hex, **headers}
        attempt = 1
        endpoint = _endpoint(method, path.split("?", 1)[0])
        url = self._base + path
        while True:
            try:
                response = await self._lean.request(method, url, headers=request_headers, content=content)
            except httpx.HTTPError:
                self._metrics.request_error(endpoint)
                raise
            self._metrics.request_answered(endpoint, response.status_code)
            if response.status_code >= 500 or response.status_code in (408, 429):
                self._metrics.request_error(endpoint)
            if attempt >= self._retry.max_attempts or not self._retry.retryable(response.status_code):
                return response
            delay = self._retry.delay(attempt, response)
            log.warning("retrying request", method=method, path=path, status=response.status_code, wait=delay)
            await asyncio.sleep(delay)
            attempt += 1

    async def verify(self) -> VerifyResult:
        """``POST runners/verify``: is the runner token valid?"""
        body = VerifyRunnerRequest(token=self._settings.token, system_id=self._settings.system_id, info=self._info)
        try:
            response = await self._send("POST", "runners/verify", self._runner_headers(), _json(body))
        except httpx.HTTPError as exc:
            return VerifyResult(valid=True, error=f"network error: {exc!r}")
        if response.status_code == 403:
            return VerifyResult(valid=False, error="403 Forbidden: the runner token was rejected")
        if response.status_code != 200:
            return VerifyResult(valid=True, error=f"unexpected status {response.status_code}")
        try:
            return VerifyResult(valid=True, details=RegistrationDetails.model_validate_json(response.content))
        except pydantic.ValidationError:
            return VerifyResult(valid=True)  # older GitLab answers a plain-text "200"

    async def request_job(self, last_update: str | None) -> JobRequestResult:
        """``POST jobs/request``; may block for a long poll (GitLab Workhorse holds up to ~50 s)."""
        body = JobRequest(
            token=self._settings.token, system_id=self._settings.system_id, last_update=last_update, info=self._info
        )
        try:
            response = await self._send("POST", "jobs/request", self._runner_headers(), _json(body))
        except httpx.HTTPError as exc:
            return JobRequestResult(None, last_update, healthy=True, error=f"network error: {exc!r}")
        last_update = response.headers.get(headers.LAST_UPDATE) or last_update
        status = response.status_code
        if status == 204:
            return JobRequestResult(None, last_update)
        if status == 403:
            return JobRequestResult(None, last_update, healthy=False, error="403 Forbidden")
        if status != 201:
            return JobRequestResult(None, last_update, error=f"unexpected status {status}")
        if _media_type(response) != "application/json":
            return JobRequestResult(None, last_update, error="job response is not application/json")
        try:
            return JobRequestResult(JobPayload.model_validate(_without_nulls(response.json())), last_update)
        except (ValueError, pydantic.ValidationError) as exc:
            rejected = RejectedJob.from_body(response.content, str(exc))
            return JobRequestResult(None, last_update, rejected=rejected, error=str(exc))

    async def update_job(
        self,
        job_id: int,
        token: str,
        state: str,
        output: JobOutput | None = None,
        failure_reason: str | None = None,
        exit_code: int | None = None,
    ) -> UpdateResult:
        """``PUT jobs/:id``: acknowledgement, keep-alive or final state.

        Args:
            output: checksum and size of the trace; ``None`` sends ``{}`` (the acknowledgement).
            exit_code: sent only when non-zero (``omitempty`` in the Go runner).
        """
        output = output or JobOutput()
        body = UpdateJobRequest(
            token=token,
            state=state,
            failure_reason=failure_reason,
            checksum=output.checksum,
            output=output,
            exit_code=exit_code or None,
            info=self._info,
        )
        try:
            response = await self._send("PUT", f"jobs/{job_id}", {headers.JOB_TOKEN: token, **_JSON}, _json(body))
        except httpx.HTTPError as exc:
            log.warning("job update failed", job_id=job_id, state=state, error=repr(exc))
            return UpdateResult(UpdateKind.FAILED)
        job_status = response.headers.get(headers.JOB_STATUS)
        interval = _update_interval(response)
        status = response.status_code
        if job_status in _ABORT_STATUSES or status in (403, 404):
            kind = UpdateKind.ABORT
        else:
            kind = {200: UpdateKind.SUCCEEDED, 202: UpdateKind.ACCEPTED, 412: UpdateKind.RESET}.get(
                status, UpdateKind.FAILED
            )
        if kind is UpdateKind.FAILED:
            log.warning("job update failed", job_id=job_id, state=state, status=status)
        return UpdateResult(kind, job_status, interval, cancel_requested=job_status == "canceling")

    async def patch_trace(
        self, job_id: int, token: str, offset: int, data: bytes, *, debug_trace: bool = False
    ) -> PatchResult:
        """``PATCH jobs/:id/trace``: append ``data`` at ``offset``. ``data`` must not be empty."""
        request_headers = {
            headers.JOB_TOKEN: token,
            headers.CONTENT_RANGE: content_range(offset, len(data)),
            "Content-Type": "text/plain",
        }
        try:
            response = await self._send(
                "PATCH", f"jobs/{job_id}/trace?debug_trace={'true' if debug_trace else 'false'}", request_headers, data
            )
        except httpx.HTTPError as exc:
            log.warning("trace patch failed", job_id=job_id, offset=offset, error=repr(exc))
            return PatchResult(PatchKind.FAILED)
        job_status = response.headers.get(headers.JOB_STATUS)
        range_header = response.headers.get(headers.RANGE)
        server_offset = parse_range(range_header) if range_header else None
        status = response.status_code
        if job_status in _ABORT_STATUSES or status == 403:
            kind = PatchKind.ABORT
        elif status == 202:
            kind = PatchKind.ACCEPTED
            self._metrics.bytes_sent(len(data))
        elif status == 416:
            kind, server_offset = PatchKind.RANGE_MISMATCH, server_offset or 0
        elif status == 404:
            kind = PatchKind.NOT_FOUND
        else:
            kind = PatchKind.FAILED
            log.warning("trace patch failed", job_id=job_id, offset=offset, status=status)
        return PatchResult(
            kind,
            server_offset=server_offset,
            job_status=job_status,
            cancel_requested=job_status == "canceling",
            update_interval=_update_interval(response),
        )

    async def upload_artifact(
        self, job_id: int, token: str, path: Path, *, filename: str, query: dict[str, str]
    ) -> ArtifactResult:
        """``POST jobs/:id/artifacts``: one multipart field ``file``, streamed (chunked).

        Tried up to 3 times (6 on 503) like the Go helper; 403 and 413 are final.
        """
        boundary = uuid.uuid4().hex
        request_headers = {headers.JOB_TOKEN: token, "Content-Type": f"multipart/form-data; boundary={boundary}"}
        params = {key: value for key, value in query.items() if value}
        result = ArtifactResult(False, 0, "not sent")
        for attempt in range(6):
            try:
                response = await self._http.post(
                    f"jobs/{job_id}/artifacts", params=params,
                    headers={"X-Request-Id": uuid.uuid4().hex, **request_headers},
                    content=_multipart(path, filename, boundary), timeout=httpx.Timeout(3600.0, connect=30.0),
                )  # fmt: skip
            except httpx.HTTPError as exc:
                self._metrics.request_error("POST jobs/:id/artifacts")
                result = ArtifactResult(False, 0, f"network error: {exc!r}")
            else:
                if response.status_code == 201:
                    return ArtifactResult(True, 201)
                result = ArtifactResult(False, response.status_code, response.text[:200])
                if response.status_code in (403, 413):
                    return result
                self._metrics.request_error("POST jobs/:id/artifacts")
            if attempt >= (5 if result.status == 503 else 2):
                break
            await asyncio.sleep(min(1.0 * 2**attempt, 5.0))
        return result

    async def download_artifact(self, job_id: int, token: str, destination: Path) -> ArtifactResult:
        """``GET jobs/:id/artifacts`` into ``destination``: first with ``direct_download=true``
        (redirects followed), then without; 3 attempts, 1 s apart."""
        result = ArtifactResult(False, 0, "not sent")
        for attempt in range(3):
            params = {"direct_download": "true"} if attempt == 0 else {}
            try:
                async with self._http.stream(
                    "GET", f"jobs/{job_id}/artifacts", params=params,
                    headers={"X-Request-Id": uuid.uuid4().hex, headers.JOB_TOKEN: token},
                    follow_redirects=True, timeout=httpx.Timeout(3600.0, connect=30.0),
                ) as response:  # fmt: skip
                    if response.status_code == 200:
                        with destination.open("wb") as out:
                            async for chunk in response.aiter_bytes():
                                out.write(chunk)
                        return ArtifactResult(True, 200)
                    await response.aread()
                    result = ArtifactResult(False, response.status_code, response.text[:200])
            except httpx.HTTPError as exc:
                result = ArtifactResult(False, 0, f"network error: {exc!r}")
            self._metrics.request_error("GET jobs/:id/artifacts")
            if result.status in (401, 403, 404):
                return result
            await asyncio.sleep(1.0)
        return result

    def _runner_headers(self) -> dict[str, str]:
        return {headers.RUNNER_TOKEN: self._settings.token, "Accept": "application/json", **_JSON}


async def _multipart(path: Path, filename: str, boundary: str) -> AsyncIterator[bytes]:
    safe = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
    yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{safe}\"\r\n"
           "Content-Type: application/octet-stream\r\n\r\n").encode()  # fmt: skip
    with path.open("rb") as source:
        while chunk := await asyncio.to_thread(source.read, 256 * 1024):
            yield chunk
    yield f"\r\n--{boundary}--\r\n".encode()


def _endpoint(method: str, path: str) -> str:
    """``PATCH jobs/:id/trace`` from ``PATCH jobs/12/trace``: a label without ids."""
    parts = [":id" if part.isdigit() else part for part in path.split("/")]
    return f"{method} {'/'.join(parts)}"


_JSON = {"Content-Type": "application/json"}


def _dump(model: pydantic.BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=True)


def _json(model: pydantic.BaseModel) -> bytes:
    """The body as httpx's ``json=`` encodes it."""
    return json.dumps(_dump(model), ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _media_type(response: Answer) -> str:
    return response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


def _update_interval(response: Answer) -> float | None:
    """A positive ``X-GitLab-Trace-Update-Interval``, capped at 15 minutes."""
    try:
        value = float(response.headers.get(headers.TRACE_UPDATE_INTERVAL, ""))
    except ValueError:
        return None
    return min(value, MAX_UPDATE_INTERVAL) if value > 0 else None


def _without_nulls(value: Any) -> Any:
    """Drop ``null`` members: the Go runner decodes them as zero values, so GitLab may send them."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
