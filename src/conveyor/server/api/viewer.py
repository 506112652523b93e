"""Job log readers for people: the live tail over Server-Sent Events and the raw download."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from conveyor.protocol import headers
from conveyor.server.accounts.access import Role
from conveyor.server.api.deps import project_access, services
from conveyor.server.errors import BadRequest

router = APIRouter(prefix="/api/v4")


def _start(request: Request) -> int:
    """Where to resume: ``Last-Event-ID`` (the byte offset the client has), else ``?offset=``, else 0."""
    raw = request.headers.get("Last-Event-ID") or request.query_params.get("offset") or "0"
    if not raw.strip().isdigit():
        raise BadRequest(f"400 Bad request - a log offset is a byte count, got {raw!r}")
    return int(raw)


@router.get("/projects/{project}/jobs/{job_id}/trace/stream", dependencies=[Depends(project_access(Role.REPORTER))])
async def trace_stream(request: Request, project: str, job_id: int) -> StreamingResponse:
    """The job's log from an offset, live, until the job ends (``text/event-stream``)."""
    svc = services(request)
    start = _start(request)
    async with svc.live_tail.reading():  # viewers queue for their few connections, runners do not
        row = await svc.projects.get(project)
        job = await svc.pipelines.job(row["id"], job_id)
    extra = {
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",  # nginx: pass events through as they come
        headers.JOB_STATUS: job["status"],
    }
    return StreamingResponse(svc.live_tail.stream(job_id, start, job["status"]), media_type="text/event-stream", headers=extra)


@router.get("/projects/{project}/jobs/{job_id}/trace/raw", dependencies=[Depends(project_access(Role.REPORTER))])
async def trace_raw(request: Request, project: str, job_id: int) -> StreamingResponse:
    """The job's whole log as stored now, as a file download."""
    svc = services(request)
    row = await svc.projects.get(project)
    job = await svc.pipelines.job(row["id"], job_id)
    extra = {
        "Content-Disposition": f'attachment; filename="job-{job_id}.log"',
        headers.JOB_STATUS: job["status"],
    }
    return StreamingResponse(svc.reader.stream(job_id, 0), media_type="text/plain", headers=extra)
