"""GitLab's ``GET /job``: the running job a ``JOB-TOKEN`` (or ``job_token`` parameter) belongs to,
as ``GET /projects/:id/jobs/:job_id`` shows it. A finished job's token gets 401."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from conveyor.protocol import headers
from conveyor.server.api import presenters
from conveyor.server.api.deps import services
from conveyor.server.api.openapi import OBJECT, doc
from conveyor.server.api.pipelines import present_jobs
from conveyor.server.errors import Unauthorized

router = APIRouter(prefix="/api/v4")


@router.get("/job", **doc(("job_token",), answer=OBJECT))
async def current_job(request: Request) -> dict[str, Any]:
    token = request.headers.get(headers.JOB_TOKEN) or request.query_params.get("job_token")
    if not token:
        raise Unauthorized("401 Unauthorized")
    svc = services(request)
    row = await svc.listings.job_of_token(token)
    project = await svc.projects.get(str(row["project_id"]))
    return (await present_jobs(request, [row], presenters.path_of(project)))[0]
