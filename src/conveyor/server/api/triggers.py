"""GitLab's pipeline trigger tokens (``/projects/:id/triggers``, admin) and the trigger endpoint
(``/projects/:id/trigger/pipeline``, authenticated by the trigger token itself)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from conveyor.server.api import pagination, params, presenters
from conveyor.server.api.deps import Maintainer, services
from conveyor.server.api.openapi import LIST, OBJECT, doc
from conveyor.server.errors import ParamError

router = APIRouter(prefix="/api/v4")
public = APIRouter(prefix="/api/v4")


@router.get("/projects/{project}/triggers", **doc(listing=True, answer=LIST))
async def list_triggers(request: Request, access: Maintainer) -> JSONResponse:
    page = pagination.page_of(await params.read(request))
    items, total = await services(request).automation.triggers.list(access.project_id, page.limit, page.offset)
    return pagination.respond(request, items, page, total)


@router.get("/projects/{project}/triggers/{trigger_id}", **doc(answer=OBJECT))
async def get_trigger(request: Request, access: Maintainer, trigger_id: int) -> dict[str, Any]:
    return await services(request).automation.triggers.get(access.project_id, trigger_id)


@router.post("/projects/{project}/triggers", status_code=201, **doc(body=("description", "expires_at"), required=("description",), answer=OBJECT, status=201))
async def create_trigger(request: Request, access: Maintainer) -> dict[str, Any]:
    found = await params.read(request)
    description = params.text(found, "description", required=True) or ""
    return await services(request).automation.triggers.create(access.project_id, description, params.day(found, "expires_at"))


@router.put("/projects/{project}/triggers/{trigger_id}", **doc(body=("description",), answer=OBJECT))
async def update_trigger(request: Request, access: Maintainer, trigger_id: int) -> dict[str, Any]:
    found = await params.read(request)
    values = {"description": params.text(found, "description")} if "description" in found else {}
    return await services(request).automation.triggers.update(access.project_id, trigger_id, values)


@router.delete("/projects/{project}/triggers/{trigger_id}", status_code=204)
async def delete_trigger(request: Request, access: Maintainer, trigger_id: int) -> Response:
    await services(request).automation.triggers.delete(access.project_id, trigger_id)
    return Response(status_code=204)


@public.post("/projects/{project}/trigger/pipeline", status_code=201, **doc(body=("token", "ref", "trigger_variables"), required=("token", "ref"), answer=OBJECT, status=201))
async def trigger_pipeline(request: Request, project: str) -> dict[str, Any]:
    return await _trigger(request, project, None, forge_body=False)


@public.post("/projects/{project}/ref/{ref:path}/trigger/pipeline", status_code=201, **doc(("token",), answer=OBJECT, status=201))
async def trigger_pipeline_for_ref(request: Request, project: str, ref: str) -> dict[str, Any]:
    return await _trigger(request, project, ref, forge_body=True)


async def _trigger(request: Request, project: str, ref: str | None, *, forge_body: bool) -> dict[str, Any]:
    svc = services(request)
    found = await params.read(request)
    row = await svc.projects.get(project)
    ref = ref or params.text(found, "ref", required=True) or ""
    # the path form is what a forge's webhook calls: its body reaches the jobs (TRIGGER_PAYLOAD)
    body = (await request.body()).decode(errors="replace") if forge_body else None
    created = await svc.automation.triggers.run(
        row,
        params.text(found, "token"),
        ref.removeprefix("refs/heads/"),
        found.get("variables"),
        from_hook=request.headers.get("X-Gitlab-Event") == "Pipeline Hook",
        payload=body if body and body.strip() else None,
    )
    if created.enqueued:
        await svc.dispatcher.tick(created.enqueued)
    return presenters.pipeline(created.row, svc.settings.base_url, presenters.path_of(row))
