"""Push webhooks from forges (``POST /api/v4/projects/:id/webhook``: GitLab, GitHub, Gitea and
Forgejo alike, told apart by their headers) and the Conveyor settings of how a project's
pipelines start (``PUT /api/v4/projects/:id/sources``: webhook secret, polling interval)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from conveyor.server.api import params
from conveyor.server.accounts.access import Role
from conveyor.server.api.deps import project_access, services
from conveyor.server.errors import NotFound, ParamError

router = APIRouter(prefix="/api/v4")
public = APIRouter(prefix="/api/v4")


@public.post("/projects/{project}/webhook")
async def receive_push(request: Request, project: str) -> JSONResponse:
    svc = services(request)
    try:
        row = await svc.projects.get(project)
    except NotFound:  # as for a wrong secret: nothing is said about which projects exist
        return JSONResponse({"message": "401 Unauthorized"}, status_code=401)
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    outcome = await svc.automation.pushes.receive(row, headers, body)  # it wakes the dispatcher
    status = {"created": 201, "accepted": 202}.get(outcome.status, 200)
    return JSONResponse({"status": outcome.status, "reason": outcome.reason, "pipeline_id": outcome.pipeline_id},
                        status_code=status)


@router.put("/projects/{project}/sources", dependencies=[Depends(project_access(Role.MAINTAINER))])
async def configure_sources(request: Request, project: str) -> dict[str, Any]:
    svc = services(request)
    row = await svc.projects.get(project)
    found = await params.read(request)
    if "webhook_secret" in found:
        await svc.automation.pushes.set_secret(row["id"], params.text(found, "webhook_secret"))
    if "poll_interval" in found:
        try:
            interval = int(params.text(found, "poll_interval") or 0)
        except ValueError:
            raise ParamError("poll_interval is invalid") from None
        await svc.automation.poller.configure(row["id"], interval)
    return await svc.automation.pushes.describe(row["id"])
