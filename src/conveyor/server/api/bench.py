"""The ceiling ``bench/traces`` measures PATCH throughput against: the trace PATCH's HTTP work on
the same stack (read the body under the same cap, parse Content-Range, answer 202 with Range)
with nothing authenticated or stored. Mounted only when ``bench_routes`` is set; never otherwise.

Its twin ``/bench/durable/:id/trace`` also makes the body durable the way the default store makes whole
chunks durable (appended to a segment file beside the local object store, with the server's
O_DIRECT and fdatasync settings, in 128 KiB pieces, each hashed in the event loop), and nothing else: the floor
that disk writing alone sets under the store.
"""

from __future__ import annotations

import zlib

from fastapi import APIRouter, Request, Response

from conveyor.protocol import headers
from conveyor.protocol import trace as wire
from conveyor.server.api.deps import services
from conveyor.server.api.runner_v4 import MAX_PATCH_BODY, read_capped
from conveyor.server.storage import SegmentFiles

router = APIRouter()
_floors: dict[int, SegmentFiles] = {}  # id(services) -> the durable floor's segment files


@router.patch("/bench/discard/{job_id}/trace")
async def discard_trace(request: Request, job_id: int) -> Response:
    body = await read_capped(request, MAX_PATCH_BODY)
    start, _end = wire.parse_content_range(request.headers[headers.CONTENT_RANGE])
    return _accepted(start + len(body))


@router.patch("/bench/durable/{job_id}/trace")
async def durable_trace(request: Request, job_id: int) -> Response:
    body = await read_capped(request, MAX_PATCH_BODY)
    start, _end = wire.parse_content_range(request.headers[headers.CONTENT_RANGE])
    chunk = services(request).settings.trace_chunk_size
    pieces = [memoryview(body)[i : i + chunk] for i in range(0, len(body), chunk)]
    for piece in pieces:  # hashed in the event loop, as the store hashes whole chunks
        zlib.crc32(piece)
    await _segments(request).append(f"bench-{job_id}", pieces)
    return _accepted(start + len(body))


def _accepted(size: int) -> Response:
    return Response(
        status_code=202,
        headers={
            headers.JOB_STATUS: "running",
            headers.RANGE: wire.format_range(size),
            headers.TRACE_UPDATE_INTERVAL: "3",
        },
    )


def _segments(request: Request) -> SegmentFiles:
    svc = services(request)
    if id(svc) not in _floors:
        root = svc.objects.local_root
        if root is None:
            raise RuntimeError("the durable floor needs a local object store")
        settings = svc.settings
        _floors[id(svc)] = SegmentFiles(root / "bench-segments", fsync=settings.trace_chunk_fsync, direct=settings.trace_chunk_direct)
    return _floors[id(svc)]
