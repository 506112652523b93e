"""GitLab's jobs API (rest-api.md 2.6): list, get, trace, retry, cancel, play, erase."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from conveyor.protocol import headers
from conveyor.server.api import pagination, params, presenters
from conveyor.server.api.deps import Developer, Maintainer, Reporter, services
from conveyor.server.api.openapi import LIST, OBJECT, doc
from conveyor.server.api.pipelines import STATUSES, present_jobs, statuses
from conveyor.server.errors import ParamError, RangeMismatch
from conveyor.server.queue.actions import ActionResult
from conveyor.server.queue.listing import Window

router = APIRouter(prefix="/api/v4/projects/{project}/jobs")
_BYTES_RANGE = re.compile(r"^bytes=(\d+)-$")


async def _one(request: Request, access: Any, job_id: int) -> dict[str, Any]:
    row = await services(request).listings.job(access.project_id, job_id)
    return (await present_jobs(request, [row], presenters.path_of(access.project)))[0]


async def _answered_then_woken(request: Request, access: Any, result: ActionResult) -> dict[str, Any]:
    """The job as the action left it (GitLab's answer: ``pending``), read before the runners are
    woken: a woken runner's claim would otherwise show through as ``running``."""
    answer = await _one(request, access, result.job_id)
    if result.enqueued:
        await services(request).dispatcher.tick(result.enqueued)
    return answer


@router.get("", **doc(("scope", "scope[]"), listing=True, answer=LIST))
async def list_jobs(request: Request, access: Reporter) -> JSONResponse:
    """The project's jobs, newest first; uncounted, as GitLab's (no ``X-Total``)."""
    found = await params.read(request)
    page = pagination.page_of(found)
    rows, more = await services(request).listings.project_jobs(
        access.project_id, statuses(found, STATUSES), Window(page.limit, page.offset)
    )
    shown = await present_jobs(request, rows, presenters.path_of(access.project))
    return pagination.respond(request, shown, page, None, more=more)


@router.get("/{job_id}", **doc(answer=OBJECT))
async def get_job(request: Request, access: Reporter, job_id: int) -> dict[str, Any]:
    return await _one(request, access, job_id)


@router.get("/{job_id}/trace", **doc(media="text/plain"))
async def job_trace(request: Request, access: Reporter, job_id: int) -> StreamingResponse:
    """The job's log as stored, from any byte offset with ``Range: bytes=N-`` (then 206)."""
    svc = services(request)
    job = await svc.listings.job(access.project_id, job_id)
    start = 0
    raw = request.headers.get("Range")
    if raw:
        match = _BYTES_RANGE.match(raw.strip())
        size = await svc.reader.size(job_id)
        if not match or int(match.group(1)) > size:
            raise RangeMismatch(size, f"416 Range Not Satisfiable - the log has {size} bytes")
        start = int(match.group(1))
    extra = {headers.JOB_STATUS: job["status"], "Accept-Ranges": "bytes",
             "Content-Disposition": f'infile; filename="{job_id}.log"'}
    return StreamingResponse(
        svc.reader.stream(job_id, start), status_code=206 if raw else 200, media_type="text/plain", headers=extra
    )


@router.post("/{job_id}/cancel", status_code=201, **doc(answer=OBJECT, status=201))
async def cancel_job(request: Request, access: Developer, job_id: int) -> dict[str, Any]:
    svc = services(request)
    await svc.listings.job(access.project_id, job_id)
    status = await svc.cancellation.cancel_job(job_id)
    if status == "canceled":  # a running job goes through "canceling" and ends at its runner's final update
        await svc.trace_events.publish_finished(job_id, status)
    await svc.dispatcher.tick()  # the pipeline may have moved on
    return await _one(request, access, job_id)


@router.post("/{job_id}/play", **doc(body=("job_variables_attributes",), answer=OBJECT))
async def play_job(request: Request, access: Developer, job_id: int) -> dict[str, Any]:
    """Run a manual job (with ``job_variables_attributes``), or a scheduled one now: GitLab's 200;
    400 "Unplayable Job" otherwise."""
    found = await params.read(request)
    given = found.get("job_variables_attributes") or []
    if not isinstance(given, list) or not all(isinstance(v, dict) and "key" in v for v in given):
        raise ParamError("job_variables_attributes is invalid")
    variables = {str(v["key"]): str(v.get("value") or "") for v in given}
    svc = services(request)
    result = await svc.job_actions.play(access.project_id, job_id, variables or None)
    return await _answered_then_woken(request, access, result)


@router.post("/{job_id}/retry", status_code=201, **doc(answer=OBJECT, status=201))
async def retry_job(request: Request, access: Developer, job_id: int) -> dict[str, Any]:
    """A new attempt of a finished job (the old one is kept, ``retried``); returns the new job."""
    svc = services(request)
    result = await svc.job_actions.retry(access.project_id, job_id)
    return await _answered_then_woken(request, access, result)


@router.post("/{job_id}/erase", status_code=201, **doc(answer=OBJECT, status=201))
async def erase_job(request: Request, access: Maintainer, job_id: int) -> dict[str, Any]:
    """Erase a finished job's log and artifacts (``erased_at`` set); 403 "Job is not erasable!"."""
    await services(request).listings.job(access.project_id, job_id)
    await services(request).removal.erase_job(job_id)
    return await _one(request, access, job_id)
