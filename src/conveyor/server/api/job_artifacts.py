"""GitLab's job artifacts API for people (rest-api.md 2.6): a job's archive, one file of it, the
latest successful archive of a ref, and deleting a job's artifacts."""

from __future__ import annotations

import mimetypes

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from conveyor.server.api import params
from conveyor.server.api.artifacts import attachment
from conveyor.server.api.deps import Maintainer, Reporter, services
from conveyor.server.api.openapi import doc
from conveyor.server.archive.members import NotAnArchive, read_member
from conveyor.server.errors import BadRequest, NotFound

router = APIRouter(prefix="/api/v4/projects/{project}/jobs")
_ZIP = "application/zip"


@router.get("/artifacts/{ref_name}/download", **doc(("job", "job_token"), required=("job",), media=_ZIP))
async def ref_artifacts(request: Request, access: Reporter, ref_name: str) -> StreamingResponse:
    """The archive of job ``job`` in the newest successful pipeline of branch or tag ``ref_name``."""
    job_id = await _job_of_ref(request, access.project_id, ref_name)
    return await _archive(request, job_id)


@router.get("/artifacts/{ref_name}/raw/{artifact_path:path}", **doc(("job", "job_token"), required=("job",), media="application/octet-stream"))
async def ref_artifact_file(request: Request, access: Reporter, ref_name: str, artifact_path: str) -> Response:
    """One file of that archive."""
    job_id = await _job_of_ref(request, access.project_id, ref_name)
    return await _file(request, job_id, artifact_path)


@router.get("/{job_id}/artifacts", **doc(("job_token",), media=_ZIP))
async def job_artifacts(request: Request, access: Reporter, job_id: int) -> StreamingResponse:
    await services(request).listings.job(access.project_id, job_id)
    return await _archive(request, job_id)


@router.get("/{job_id}/artifacts/{artifact_path:path}", **doc(("job_token",), media="application/octet-stream"))
async def job_artifact_file(request: Request, access: Reporter, job_id: int, artifact_path: str) -> Response:
    await services(request).listings.job(access.project_id, job_id)
    return await _file(request, job_id, artifact_path)


@router.delete("/{job_id}/artifacts", status_code=204)
async def delete_job_artifacts(request: Request, access: Maintainer, job_id: int) -> Response:
    """Delete the job's artifacts (the log stays: that is ``erase``)."""
    await services(request).listings.job(access.project_id, job_id)
    await services(request).removal.delete_artifacts(job_id)
    return Response(status_code=204)


async def _job_of_ref(request: Request, project_id: int, ref_name: str) -> int:
    found = await params.read(request)
    name = params.text(found, "job", required=True) or ""
    return int((await services(request).listings.last_successful_job(project_id, ref_name, name))["id"])


async def _archive(request: Request, job_id: int) -> StreamingResponse:
    row, chunks = await services(request).artifacts.open_file(job_id, "archive")
    kind = _ZIP if row["file_format"] in ("zip", "zipzstd") else "application/octet-stream"
    return StreamingResponse(chunks, media_type=kind, headers={"Content-Disposition": attachment(row["filename"])})


async def _file(request: Request, job_id: int, path: str) -> Response:
    if not path or ".." in path.split("/"):
        raise BadRequest("400 Bad request - artifact_path is invalid")
    _, chunks = await services(request).artifacts.open_file(job_id, "archive")
    try:
        data = await read_member(chunks, path)
    except NotAnArchive:
        raise BadRequest("400 Bad request - the artifacts are not a zip archive") from None
    if data is None:
        raise NotFound("404 Not Found")
    kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return Response(data, media_type=kind, headers={"Content-Disposition": attachment(path.rsplit("/", 1)[-1])})
