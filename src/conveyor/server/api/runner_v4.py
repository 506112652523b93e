"""The GitLab runner API for jobs (runner-api.md 3-5): job requests, job updates, trace PATCH."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response

from conveyor.protocol import JobRequest, UpdateJobRequest, headers
from conveyor.protocol import trace as wire
from conveyor.server.api import params
from conveyor.server.api.deps import services
from conveyor.server.errors import BadRequest, PayloadTooLarge, RangeMismatch
from conveyor.server.queue import coverage

if TYPE_CHECKING:
    from conveyor.server.app import Services

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/v4")
MAX_PATCH_BODY = 4 * wire.PATCH_LIMIT  # runners send at most 1 MiB; refuse far larger bodies unread


async def read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"413 Payload Too Large - a trace PATCH carries at most {limit} bytes")
    parts, size = [], 0
    async for part in request.stream():
        parts.append(part)
        size += len(part)
        if size > limit:
            raise PayloadTooLarge(f"413 Payload Too Large - a trace PATCH carries at most {limit} bytes")
    return b"".join(parts)  # one copy of a 1 MiB body, not a growing buffer and a final copy


@router.post("/jobs/request")
async def request_job(request: Request, body: Annotated[JobRequest, Depends(params.model_body(JobRequest))]) -> Response:
    svc = services(request)
    runner = await svc.runners.authenticate(body.token, body.system_id, body.info)
    # like Workhorse, hold only requests that echo a last_update (a runner's first poll is answered now)
    result = await svc.dispatcher.request_job(runner, body.last_update, hold=body.last_update is not None)
    if result.job is None:
        return Response(status_code=204, headers={headers.LAST_UPDATE: result.version})
    # No X-GitLab-Last-Update on 201 (as GitLab): the runner keeps the value of its last empty
    # poll, so its next request looks at the queue again instead of taking the 204 shortcut.
    # serialized by pydantic-core straight to JSON: half the CPU of a dict through json.dumps
    return Response(result.job.model_dump_json(), status_code=201, media_type="application/json")


@router.put("/jobs/{job_id}")
async def update_job(request: Request, job_id: int, body: Annotated[UpdateJobRequest, Depends(params.model_body(UpdateJobRequest))]) -> Response:
    svc = services(request)
    token = body.token or request.headers.get(headers.JOB_TOKEN)
    if body.state in ("running", "pending"):  # acknowledgement or keep-alive: the hot path
        status = await svc.job_updates.keepalive(job_id, token)
        interval = str(await svc.watchers.update_interval(job_id))
        return PlainTextResponse("200", status_code=200, headers={headers.JOB_STATUS: status, headers.TRACE_UPDATE_INTERVAL: interval})
    job = await svc.job_updates.authenticate(job_id, token)
    logical = await svc.limits.seal(job_id, body.output.bytesize)  # a log past the limit: head + marker + tail
    # a final state is accepted only once every log byte is durable: the hot chunks are sealed
    # now, their rows recorded in the transaction that finishes the job
    final = await svc.traces.seal_final(job_id)
    size, crc = final.size, final.crc32
    if logical is not None:  # the kept log is not what the runner printed: record its own checksum
        log.info("trace_checksum_replaced", job_id=job_id, runner=body.checksum or body.output.checksum, stored=crc)
        checksum = wire.format_checksum(crc) if logical >= (body.output.bytesize or 0) else None
        body = body.model_copy(update={"checksum": checksum, "output": body.output.model_copy(update={"checksum": checksum})})
        size = logical
    outcome = await svc.job_updates.update(job, body, size, final.record)
    extra = {headers.JOB_STATUS: outcome.job_status}
    if outcome.retry_after is not None:
        extra[headers.TRACE_UPDATE_INTERVAL] = str(outcome.retry_after)
    if outcome.finished:
        await coverage.record(svc.engine, svc.reader, job_id, outcome.coverage)
        await svc.trace_events.publish_finished(job_id, outcome.job_status)
        svc.archiver.wake(job_id, outcome.log)
    if outcome.enqueued:
        await svc.dispatcher.tick(outcome.enqueued)
    return PlainTextResponse(str(outcome.status_code), status_code=outcome.status_code, headers=extra)


async def _append(svc: Services, job_id: int, start: int, body: bytes) -> int:
    """Append and tell live viewers: in the append's own step when the store can (and then only
    while someone watches), else by a publish after it."""
    if not svc.traces.announces:
        size = await svc.traces.append(job_id, start, body)
        await svc.trace_events.publish_appended(job_id, size, body)
        return size
    announcement = svc.trace_events.announcement(job_id, start + len(body), body)
    size = await svc.traces.append(job_id, start, body, announcement)
    if announcement.watched is not None:
        svc.watchers.saw(job_id, announcement.watched)
    return size


@router.patch("/jobs/{job_id}/trace")
async def patch_trace(request: Request, job_id: int) -> Response:
    """Append at the Content-Range start if it equals the stored size; 416 + Range otherwise."""
    svc = services(request)
    token = request.headers.get(headers.JOB_TOKEN) or request.query_params.get("token")
    job = await svc.job_updates.authenticate(job_id, token)
    raw_range = request.headers.get(headers.CONTENT_RANGE)
    if not raw_range:
        raise BadRequest("400 Bad request - Missing header Content-Range")
    body = await read_capped(request, MAX_PATCH_BODY)
    try:
        start, _end = wire.parse_content_range(raw_range)
    except wire.BadContentRange as exc:
        svc.metrics.trace_range_mismatches.inc()
        raise RangeMismatch(await svc.limits.size(job_id), f"416 Range Not Satisfiable - {exc}") from exc
    await svc.job_updates.touch_if_stale(job)
    try:
        if svc.limits.reaches_past_head(start, len(body)):  # past the size limit's head: the tail is kept
            size = await svc.limits.append(job_id, start, body)
        elif body:
            size = await _append(svc, job_id, start, body)
        else:
            size = await svc.traces.size(job_id)
            if start != size:
                raise RangeMismatch(size)
    except RangeMismatch as mismatch:
        svc.metrics.trace_range_mismatches.inc()
        logical = await svc.limits.size(job_id)  # past the limit, the runner's offset is the logical size
        if logical != mismatch.size:
            raise RangeMismatch(logical) from mismatch
        raise
    svc.metrics.trace_patches.inc()
    svc.metrics.trace_bytes.inc(len(body))
    return Response(
        status_code=202,
        headers={
            headers.JOB_STATUS: job["status"],
            headers.RANGE: wire.format_range(size),
            headers.TRACE_UPDATE_INTERVAL: str(await svc.watchers.update_interval(job_id)),
        },
    )
