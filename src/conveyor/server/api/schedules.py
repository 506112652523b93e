"""GitLab's pipeline schedules API (``/projects/:id/pipeline_schedules``, rest-api.md 2.9)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from conveyor.server.api import params
from conveyor.server.accounts.access import Role
from conveyor.server.api.deps import project_access, services
from conveyor.server.api.projects import present_pipeline
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


async def _project(request: Request, project: str) -> Any:
    return await services(request).projects.get(project)


@router.get("", dependencies=[Depends(project_access(Role.REPORTER))])
async def list_schedules(request: Request, project: str, scope: str | None = None) -> list[dict[str, Any]]:
    active = {"active": True, "inactive": False}.get(scope or "")
    return await services(request).automation.schedules.list((await _project(request, project))["id"], active)


@router.get("/{schedule_id}", dependencies=[Depends(project_access(Role.REPORTER))])
async def get_schedule(request: Request, project: str, schedule_id: int) -> dict[str, Any]:
    return await services(request).automation.schedules.details((await _project(request, project))["id"], schedule_id)


@router.get("/{schedule_id}/pipelines", dependencies=[Depends(project_access(Role.REPORTER))])
async def schedule_pipelines(request: Request, project: str, schedule_id: int) -> list[dict[str, Any]]:
    rows = await services(request).automation.schedules.pipelines((await _project(request, project))["id"], schedule_id)
    return [present_pipeline(row) for row in rows]


@router.post("", status_code=201, dependencies=[Depends(project_access(Role.DEVELOPER))])
async def create_schedule(request: Request, project: str) -> dict[str, Any]:
    values = _values(await params.read(request), create=True)
    return await services(request).automation.schedules.create((await _project(request, project))["id"], values)


@router.put("/{schedule_id}", dependencies=[Depends(project_access(Role.MAINTAINER))])
async def update_schedule(request: Request, project: str, schedule_id: int) -> dict[str, Any]:
    values = _values(await params.read(request), create=False)
    return await services(request).automation.schedules.update((await _project(request, project))["id"], schedule_id, values)


@router.post("/{schedule_id}/take_ownership", dependencies=[Depends(project_access(Role.MAINTAINER))])
async def take_ownership(request: Request, project: str, schedule_id: int) -> JSONResponse:
    body, changed = await services(request).automation.schedules.take_ownership(
        (await _project(request, project))["id"], schedule_id
    )
    return JSONResponse(body, status_code=201 if changed else 200)


@router.post("/{schedule_id}/play", status_code=201, dependencies=[Depends(project_access(Role.DEVELOPER))])
async def play_schedule(request: Request, project: str, schedule_id: int) -> dict[str, Any]:
    svc = services(request)
    created = await svc.automation.schedules.play(await _project(request, project), schedule_id)
    if created.enqueued:
        await svc.dispatcher.tick(created.enqueued)
    return {"message": "201 Created"}


@router.delete("/{schedule_id}", status_code=204, dependencies=[Depends(project_access(Role.MAINTAINER))])
async def delete_schedule(request: Request, project: str, schedule_id: int) -> Response:
    await services(request).automation.schedules.delete((await _project(request, project))["id"], schedule_id)
    return Response(status_code=204)


@router.post("/{schedule_id}/variables", status_code=201, dependencies=[Depends(project_access(Role.MAINTAINER))])
async def create_variable(request: Request, project: str, schedule_id: int) -> dict[str, Any]:
    found = await params.read(request)
    return await services(request).automation.schedules.put_variable(
        (await _project(request, project))["id"], schedule_id,
        params.text(found, "key", required=True) or "", params.text(found, "value", required=True),
        params.choice(found, "variable_type", rules.TYPES, "env_var"), create=True,
    )


@router.put("/{schedule_id}/variables/{key}", dependencies=[Depends(project_access(Role.MAINTAINER))])
async def update_variable(request: Request, project: str, schedule_id: int, key: str) -> dict[str, Any]:
    found = await params.read(request)
    return await services(request).automation.schedules.put_variable(
        (await _project(request, project))["id"], schedule_id, key,
        params.text(found, "value"), params.choice(found, "variable_type", rules.TYPES), create=False,
    )


@router.delete("/{schedule_id}/variables/{key}", status_code=202, dependencies=[Depends(project_access(Role.MAINTAINER))])
async def delete_variable(request: Request, project: str, schedule_id: int, key: str) -> dict[str, Any]:
    return await services(request).automation.schedules.delete_variable(
        (await _project(request, project))["id"], schedule_id, key
    )
