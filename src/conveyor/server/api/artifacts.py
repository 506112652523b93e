"""Job artifacts over the runner API (runner-api.md 7.1, 7.2): upload and dependency download
(a running job's token; or a personal access token of a reporter of the job's project)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from starlette.requests import ClientDisconnect

from conveyor.protocol import headers
from conveyor.server.accounts.access import Role
from conveyor.server.api.deps import access_to, current_actor, services
from conveyor.server.errors import BadRequest

router = APIRouter(prefix="/api/v4")


@router.post("/jobs/{job_id}/artifacts")
async def upload_artifact(
    request: Request,
    job_id: int,
    artifact_format: str | None = None,
    artifact_type: str | None = None,
    expire_in: str | None = None,
) -> Response:
    """Multipart field ``file``, streamed (usually chunked): 201 ``"201"``; 403, 413, 400 otherwise."""
    svc = services(request)
    token = request.headers.get(headers.JOB_TOKEN) or request.query_params.get("token")
    job = await svc.job_updates.authenticate(job_id, token)
    declared = request.headers.get("Content-Length", "")
    await svc.artifacts.upload(
        job,
        _body(request),
        content_type=request.headers.get("Content-Type", ""),
        artifact_type=artifact_type,
        artifact_format=artifact_format,
        expire_in=expire_in,
        content_length=int(declared) if declared.isdigit() else None,
    )
    return PlainTextResponse("201", status_code=201)


@router.get("/jobs/{job_id}/artifacts")
async def download_artifacts(request: Request, job_id: int, direct_download: bool = False) -> Response:
    """The job's archive, streamed. ``direct_download`` is accepted; the answer is always the bytes."""
    query = request.query_params
    token = request.headers.get(headers.JOB_TOKEN) or query.get("job_token") or query.get("token")
    svc = services(request)
    if token is None and _person(request):  # a personal access token: a reporter of the job's project
        project_id = await svc.artifacts.project_of(job_id)
        await access_to(request, str(project_id), await current_actor(request), Role.REPORTER)
        row, chunks = await svc.artifacts.open_file(job_id, "archive")
    else:
        row, chunks = await svc.artifacts.open(job_id, token)
    return StreamingResponse(
        chunks,
        media_type="application/zip" if row["file_format"] in ("zip", "zipzstd") else "application/octet-stream",
        headers={"Content-Disposition": attachment(row["filename"])},
    )


def _person(request: Request) -> bool:
    bearer = request.headers.get("Authorization", "")
    return bool(
        request.headers.get(headers.PRIVATE_TOKEN) or request.query_params.get("private_token")
        or bearer.lower().startswith("bearer glpat-")
    )  # fmt: skip


async def _body(request: Request) -> AsyncIterator[bytes]:
    try:
        async for piece in request.stream():
            if piece:
                yield piece
    except ClientDisconnect as exc:
        raise BadRequest("400 Bad request - the upload was interrupted") from exc


def attachment(filename: str) -> str:
    """``attachment; filename="..."``, plus RFC 6266 ``filename*`` when the name is not ASCII."""
    ascii_name = filename.encode("ascii", "replace").decode().replace("\\", "\\\\").replace('"', '\\"')
    value = f'attachment; filename="{ascii_name}"'
    if not filename.isascii():
        value += f"; filename*=UTF-8''{quote(filename)}"
    return value
