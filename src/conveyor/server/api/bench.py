"""The ceiling ``bench/traces`` measures PATCH throughput against: the trace PATCH's HTTP work on
the same stack (read the body under the same cap, parse Content-Range, answer 202 with Range)
with nothing authenticated or stored. Mounted only when ``bench_routes`` is set; never otherwise.

Its twin ``/bench/durable/:id/trace`` also makes the body durable the way the default store makes whole
chunks durable (appended to a segment file beside the local object store, with the server's
O_DIRECT and fdatasync settings, in 128 KiB pieces, each hashed in the event loop), and nothing else: the floor
that disk writing alone sets under the store.

``/bench/ceiling/api/v4/jobs/request`` and ``/bench/ceiling/api/v4/jobs/:id`` are the ceiling
``bench/dispatch`` measures the runner API against: a runner pointed at ``<server>/bench/ceiling``
gets the real routes' HTTP work (the same request models parsed, a 201 job payload built by the
real builder from a fixed one-job spec and serialized, the acknowledgement's 200 with its headers)
and nothing else: no token check, no database, no queue.
"""

from __future__ import annotations

import itertools
import zlib

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from conveyor.protocol import JobRequest, JobSpec, UpdateJobRequest, headers
from conveyor.protocol import trace as wire
from conveyor.server.api.deps import services
from conveyor.server.api.runner_v4 import MAX_PATCH_BODY, read_capped
from conveyor.server.queue import payload
from conveyor.server.storage import SegmentFiles

router = APIRouter()
_floors: dict[int, SegmentFiles] = {}  # id(services) -> the durable floor's segment files
_ceiling_ids = itertools.count(1)
_CEILING_SPEC = JobSpec(name="job", stage="test", stage_idx=0, script=["echo one", "echo two", "echo three"],
                        variables={"GIT_STRATEGY": "none"}).model_dump(mode="json")  # fmt: skip


@router.post("/bench/ceiling/api/v4/jobs/request")
async def ceiling_request(request: Request, body: JobRequest) -> Response:
    job_id = next(_ceiling_ids)
    job = {"id": job_id, "name": "job", "stage": "test", "spec": _CEILING_SPEC, "protected": False}
    project = {"id": 1, "name": "bench", "default_branch": "main"}
    pipeline = {"id": job_id, "ref": "main", "sha": "0" * 40, "variables": {}}
    built = payload.build(job, project, pipeline, token=f"glcbt-bench-{job_id}", repo_url="http://bench/bench.git",
                          server_url=str(request.base_url), default_timeout=3600)  # fmt: skip
    return Response(built.model_dump_json(), status_code=201, media_type="application/json")  # as the real route


@router.put("/bench/ceiling/api/v4/jobs/{job_id}")
async def ceiling_update(request: Request, job_id: int, body: UpdateJobRequest) -> Response:
    return PlainTextResponse("200", status_code=200, headers={headers.JOB_STATUS: "running", headers.TRACE_UPDATE_INTERVAL: "3"})


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
