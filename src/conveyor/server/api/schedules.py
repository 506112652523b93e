"""GitLab's pipeline schedules API (``/projects/:id/pipeline_schedules``, rest-api.md 2.9)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from conveyor.server.api import pagination, params, presenters
from conveyor.server.api.deps import Developer, Maintainer, Reporter, services
from conveyor.server.api.openapi import LIST, OBJECT, doc
from conveyor.server.variables import rules

router = APIRouter(prefix="/api/v4/projects/{project}/pipeline_schedules")


def _values(found: dict[str, Any], *, create: bool) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in ("description", "ref", "cron", "cron_timezone"):
        if create and name != "cron_timezone" or name in found:
            values[name] = params.text(found, name, required=create and name != "cron_timezone")
    if "cron_timezone" in values and values["cron_timezone"] is None:
        del values["cron_timezone"]
    if "active" in found:
        values["active"] = params.boolean(found, "active")
    return values


@router.get("", **doc(("scope",), listing=True, answer=LIST))
async def list_schedules(request: Request, access: Reporter) -> JSONResponse:
    found = await params.read(request)
    active = {"active": True, "inactive": False}.get(params.choice(found, "scope", ("active", "inactive")) or "")
    page = pagination.page_of(found)
    items, total = await services(request).automation.schedules.list(access.project_id, active, page.limit, page.offset)
    return pagination.respond(request, items, page, total)


@router.get("/{schedule_id}", **doc(answer=OBJECT))
async def get_schedule(request: Request, access: Reporter, schedule_id: int) -> dict[str, Any]:
    return await services(request).automation.schedules.details(access.project_id, schedule_id)


@router.get("/{schedule_id}/pipelines", **doc(listing=True, answer=LIST))
async def schedule_pipelines(request: Request, access: Reporter, schedule_id: int) -> JSONResponse:
    page = pagination.page_of(await params.read(request))
    rows, total = await services(request).automation.schedules.pipelines(access.project_id, schedule_id, page.limit, page.offset)
    base, path = services(request).settings.base_url, presenters.path_of(access.project)
    return pagination.respond(request, [presenters.pipeline(r, base, path, full=False) for r in rows], page, total)


@router.post("", status_code=201, **doc(body=("description", "ref", "cron", "cron_timezone", "active"), required=("description", "ref", "cron"), answer=OBJECT, status=201))
async def create_schedule(request: Request, access: Developer) -> dict[str, Any]:
    values = _values(await params.read(request), create=True)
    return await services(request).automation.schedules.create(access.project_id, values)


@router.put("/{schedule_id}", **doc(body=("description", "ref", "cron", "cron_timezone", "active"), answer=OBJECT))
async def update_schedule(request: Request, access: Maintainer, schedule_id: int) -> dict[str, Any]:
    values = _values(await params.read(request), create=False)
    return await services(request).automation.schedules.update(access.project_id, schedule_id, values)


@router.post("/{schedule_id}/take_ownership", **doc(answer=OBJECT, status=201))
async def take_ownership(request: Request, access: Maintainer, schedule_id: int) -> JSONResponse:
    body, changed = await services(request).automation.schedules.take_ownership(
        access.project_id, schedule_id
    )
    return JSONResponse(body, status_code=201 if changed else 200)


@router.post("/{schedule_id}/play", status_code=201, **doc(answer=OBJECT, status=201))
async def play_schedule(request: Request, access: Developer, schedule_id: int) -> dict[str, Any]:
    svc = services(request)
    created = await svc.automation.schedules.play(access.project, schedule_id)
    if created.enqueued:
        await svc.dispatcher.tick(created.enqueued)
    return {"message": "201 Created"}


@router.delete("/{schedule_id}", status_code=204)
async def delete_schedule(request: Request, access: Maintainer, schedule_id: int) -> Response:
    await services(request).automation.schedules.delete(access.project_id, schedule_id)
    return Response(status_code=204)


@router.post("/{schedule_id}/variables", status_code=201, **doc(body=("key", "value", "variable_type"), required=("key", "value"), answer=OBJECT, status=201))
async def create_variable(request: Request, access: Maintainer, schedule_id: int) -> dict[str, Any]:
    found = await params.read(request)
    return await services(request).automation.schedules.put_variable(
        access.project_id, schedule_id,
        params.text(found, "key", required=True) or "", params.text(found, "value", required=True),
        params.choice(found, "variable_type", rules.TYPES, "env_var"), create=True,
    )


@router.put("/{schedule_id}/variables/{key}", **doc(body=("value", "variable_type"), answer=OBJECT))
async def update_variable(request: Request, access: Maintainer, schedule_id: int, key: str) -> dict[str, Any]:
    found = await params.read(request)
    return await services(request).automation.schedules.put_variable(
        access.project_id, schedule_id, key,
        params.text(found, "value"), params.choice(found, "variable_type", rules.TYPES), create=False,
    )


@router.delete("/{schedule_id}/variables/{key}", status_code=202, **doc(answer=OBJECT, status=202))
async def delete_variable(request: Request, access: Maintainer, schedule_id: int, key: str) -> dict[str, Any]:
    return await services(request).automation.schedules.delete_variable(
        access.project_id, schedule_id, key
    )
