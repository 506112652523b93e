"""GitLab's project hooks API (``/projects/:id/hooks``, rest-api.md 2.10) and Conveyor's delivery
log of each hook (``/projects/:id/hooks/:hook_id/deliveries``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from conveyor.server.api import pagination, params
from conveyor.server.api.deps import Maintainer, services
from conveyor.server.api.openapi import LIST, OBJECT, doc
from conveyor.server.automation.hooks import EVENTS

router = APIRouter(prefix="/api/v4/projects/{project}/hooks")
HOOK_FIELDS = ("url", "name", "description", "token", "push_events", "tag_push_events", "pipeline_events",
               "job_events", "enable_ssl_verification")
DEFAULTS = {"push_events": True, "tag_push_events": False, "pipeline_events": False, "job_events": False,
            "enable_ssl_verification": True}


def _values(found: dict[str, Any], *, create: bool) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in ("url", "name", "description", "token"):
        if name in found or (create and name == "url"):
            values[name] = params.text(found, name, required=create and name == "url")
    for flag, default in DEFAULTS.items():
        if flag in found:
            values[flag] = params.boolean(found, flag)
        elif create:
            values[flag] = default
    return values


@router.get("", **doc(listing=True, answer=LIST))
async def list_hooks(request: Request, access: Maintainer) -> JSONResponse:
    page = pagination.page_of(await params.read(request))
    items, total = await services(request).automation.hooks.list(access.project_id, page.limit, page.offset)
    return pagination.respond(request, items, page, total)


@router.get("/{hook_id}", **doc(answer=OBJECT))
async def get_hook(request: Request, access: Maintainer, hook_id: int) -> dict[str, Any]:
    return await services(request).automation.hooks.get(access.project_id, hook_id)


@router.post("", status_code=201, **doc(body=HOOK_FIELDS, required=("url",), answer=OBJECT, status=201))
async def create_hook(request: Request, access: Maintainer) -> dict[str, Any]:
    values = _values(await params.read(request), create=True)
    return await services(request).automation.hooks.create(access.project_id, values)


@router.put("/{hook_id}", **doc(body=HOOK_FIELDS, answer=OBJECT))
async def update_hook(request: Request, access: Maintainer, hook_id: int) -> dict[str, Any]:
    values = _values(await params.read(request), create=False)
    return await services(request).automation.hooks.update(access.project_id, hook_id, values)


@router.delete("/{hook_id}", status_code=204)
async def delete_hook(request: Request, access: Maintainer, hook_id: int) -> Response:
    await services(request).automation.hooks.delete(access.project_id, hook_id)
    return Response(status_code=204)


@router.post("/{hook_id}/test/{trigger}", status_code=201, **doc(answer=OBJECT, status=201))
async def test_hook(request: Request, access: Maintainer, hook_id: int, trigger: str) -> dict[str, Any]:
    svc = services(request)
    project_id = access.project_id
    latest = await svc.pipelines.list(project_id)
    await svc.automation.hooks.test(project_id, hook_id, trigger if trigger in EVENTS else "", latest[0]["id"] if latest else None)
    return {"message": "201 Created"}


@router.get("/{hook_id}/deliveries", **doc(listing=True, answer=LIST))
async def hook_deliveries(request: Request, access: Maintainer, hook_id: int) -> JSONResponse:
    found = await params.read(request)
    return pagination.respond_all(request, await services(request).automation.hooks.deliveries(access.project_id, hook_id), found)
