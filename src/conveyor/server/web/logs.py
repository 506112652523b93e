"""The job log viewer's reads, signed in by the session cookie (``EventSource`` and ``fetch``
send no token headers), for a Reporter of the job's project (404 for a project the user cannot
see, as the API's ``trace`` routes): numbered byte ranges aligned to lines, a line's neighbourhood, whole-log
search, the live tail (the same SSE stream as the API), raw view and download."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from conveyor.server.accounts.access import Role
from conveyor.server.api.deps import services
from conveyor.server.api.viewer import trace_stream
from conveyor.server.errors import BadRequest
from conveyor.server.viewer.index import Window
from conveyor.server.web.render import signed_in, visit
from conveyor.server.web.sessions import Session


async def reporter(request: Request, project: str, session: Session = Depends(signed_in)) -> None:
    await visit(request, project, session, Role.REPORTER)


router = APIRouter(prefix="/projects/{project}/jobs/{job_id}/log", dependencies=[Depends(reporter)])
BEFORE, AFTER = 16 * 1024, 16 * 1024  # bytes around a line a jump loads (the page keeps a few hundred rows)
# the tail a job page carries, rendered as rows (web/rows.py): a full pane on a 4K screen (70vh of
# 20 px rows is 32 at 900 px, 76 at 2160 px) and no more. Every row costs the first paint: parsed,
# styled, laid out (twice: again when the viewer adopts them and scrolls) and adopted before the
# viewer marks it; the first open of a 100 MiB log painted at 262 ms median with 200 rows, 210 with
# 100, 171 with 50 (same run, alternating, load 5-7). Earlier lines load when scrolled to.
INLINE_BYTES, INLINE_LINES = 24 * 1024, 100
MAX_QUERY = 200
_searches = asyncio.Semaphore(2)  # whole-log scans at once per process


async def _owned(request: Request, project: str, job_id: int) -> None:
    svc = services(request)
    row = await svc.projects.get(project)
    await svc.pipelines.job(row["id"], job_id)  # 404 unless the job is the project's


def _window(window: Window) -> Response:
    return Response(window.data, media_type="application/octet-stream", headers={
        "Cache-Control": "no-store",
        "X-Conveyor-Start": str(window.start),
        "X-Conveyor-End": str(window.end),
        "X-Conveyor-Line": str(window.first_line),
        "X-Conveyor-Size": str(window.size),
        "X-Conveyor-Lines": str(window.total_lines),
    })


async def inline_tail(request: Request, job_id: int) -> dict[str, Any]:
    """The log's last whole lines (at most ``INLINE_LINES`` in ``INLINE_BYTES``) as the job page's
    data, so the page shows them without asking again. ``first`` 0: not numbered yet."""
    window = await services(request).log_index.tail(job_id, INLINE_BYTES)
    data, start, first = window.data, window.start, window.first_line
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    if lines > INLINE_LINES:
        rest = data.split(b"\n", lines - INLINE_LINES)[-1]
        start, first = start + len(data) - len(rest), first and first + lines - INLINE_LINES
        data = rest
    return {"text": data.decode("utf-8", "replace"), "start": start, "end": window.end, "first": first,
            "size": window.size, "lines": window.total_lines}


@router.get("/range")
async def log_range(request: Request, project: str, job_id: int, start: int = 0, end: int | None = None) -> Response:
    """Whole lines of bytes ``start``..``end`` (default: the log's end), numbered in headers."""
    await _owned(request, project, job_id)
    if start < 0 or (end is not None and end < start):
        raise BadRequest("400 Bad request - start and end are byte offsets, start <= end")
    index = services(request).log_index
    return _window(await index.window(job_id, start, end if end is not None else 2**62))


@router.get("/tail")
async def log_tail(request: Request, project: str, job_id: int, size: int = 128 * 1024) -> Response:
    """The last ``size`` bytes, from a line start: where the viewer opens (``X-Conveyor-Line: 0``:
    not numbered yet, ask again)."""
    await _owned(request, project, job_id)
    return _window(await services(request).log_index.tail(job_id, min(size, 1024 * 1024)))


@router.get("/line")
async def log_line(request: Request, project: str, job_id: int, n: int) -> Response:
    """The bytes around line ``n`` (a deep link or a search hit outside what is loaded)."""
    await _owned(request, project, job_id)
    index = services(request).log_index
    offset = await index.offset_of(job_id, n)
    return _window(await index.window(job_id, max(offset - BEFORE, 0), offset + AFTER))


@router.get("/search")
async def log_search(request: Request, project: str, job_id: int, q: str) -> JSONResponse:
    """Lines of the whole log whose text contains ``q`` (case-insensitive, escapes stripped)."""
    await _owned(request, project, job_id)
    if not q or len(q) > MAX_QUERY:
        raise BadRequest(f"400 Bad request - search text must be 1 to {MAX_QUERY} characters")
    async with _searches:
        hits, total = await services(request).log_index.search(job_id, q)
    return JSONResponse({"total": total, "hits": [{"line": h.line, "preview": h.preview} for h in hits]})


@router.get("/errors")
async def log_errors(request: Request, project: str, job_id: int) -> JSONResponse:
    """Lines of the whole log that look like errors (``viewer.index.ERRORS``): "next error"."""
    await _owned(request, project, job_id)
    async with _searches:
        hits, total = await services(request).log_index.errors(job_id)
    return JSONResponse({"total": total, "hits": [{"line": h.line, "preview": h.preview} for h in hits]})


@router.get("/stream")
async def log_stream(request: Request, project: str, job_id: int) -> StreamingResponse:
    """The live tail from ``?offset=`` or ``Last-Event-ID``: the API's SSE stream."""
    return await trace_stream(request, project, job_id)


@router.get("/raw")
async def log_raw(request: Request, project: str, job_id: int, download: bool = False) -> StreamingResponse:
    """The log as plain text in a sandbox (``Raw``), or as a file (``Download``)."""
    await _owned(request, project, job_id)
    disposition = f'attachment; filename="job-{job_id}.log"' if download else "inline"
    return StreamingResponse(services(request).reader.stream(job_id, 0), media_type="text/plain; charset=utf-8", headers={
        "Content-Disposition": disposition,
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Cache-Control": "no-store",
    })
