"""The ceiling ``bench/traces`` measures PATCH throughput against: the trace PATCH's HTTP work on
the same stack (read the body under the same cap, parse Content-Range, answer 202 with Range)
with nothing authenticated or stored. Mounted only when ``bench_routes`` is set; never otherwise.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from conveyor.protocol import headers
from conveyor.protocol import trace as wire
from conveyor.server.api.runner_v4 import MAX_PATCH_BODY, read_capped

router = APIRouter()


@router.patch("/bench/discard/{job_id}/trace")
async def discard_trace(request: Request, job_id: int) -> Response:
    body = await read_capped(request, MAX_PATCH_BODY)
    start, _end = wire.parse_content_range(request.headers[headers.CONTENT_RANGE])
    return Response(
        status_code=202,
        headers={
            headers.JOB_STATUS: "running",
            headers.RANGE: wire.format_range(start + len(body)),
            headers.TRACE_UPDATE_INTERVAL: "3",
        },
    )
