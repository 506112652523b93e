"""GitLab's runners management API (rest-api.md 2.11): the caller's runners, every runner
(admin), show, edit (pause, tags...), delete, a runner's jobs, and a project's runners.

Conveyor has instance runners only. ``GET /runners`` lists the runners a user owns through its
projects and groups, which instance runners are not (as in GitLab): it is empty; administrators
see them in ``/runners/all``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from conveyor.server.accounts.runners import parse_tags
from conveyor.server.api import pagination, params, presenters
from conveyor.server.api.deps import Maintainer, current_actor, require_admin, services
from conveyor.server.api.openapi import LIST, OBJECT, doc
from conveyor.server.api.pipelines import STATUSES
from conveyor.server.errors import BadRequest
from conveyor.server.queue.listing import Window

router = APIRouter(prefix="/api/v4")
TYPES = ("instance_type", "group_type", "project_type")
STATES = ("online", "offline", "stale", "never_contacted", "active", "paused")
_FILTERS = ("type", "status", "paused", "tag_list", "scope")
_SETTINGS = ("description", "paused", "active", "tag_list", "run_untagged", "locked", "access_level",
             "maximum_timeout", "maintenance_note")


def _where(found: dict[str, Any]) -> dict[str, Any]:
    status = params.choice(found, "status", STATES) or params.choice(found, "scope", STATES)
    tags = found.get("tag_list")
    return {
        "type": params.choice(found, "type", TYPES), "status": status, "paused": params.boolean(found, "paused"),
        "tag_list": parse_tags(tags if isinstance(tags, (str, list)) else None),
    }


async def _page(request: Request, where: dict[str, Any], found: dict[str, Any]) -> JSONResponse:
    page = pagination.page_of(found)
    rows, total = await services(request).runner_admin.page(where, page.limit, page.offset)
    return pagination.respond(request, [presenters.runner(r) for r in rows], page, total)


@router.get("/runners", dependencies=[Depends(current_actor)], **doc(_FILTERS, listing=True, answer=LIST))
async def my_runners(request: Request) -> JSONResponse:
    """The project and group runners the caller owns: none, Conveyor's runners are instance-wide."""
    found = await params.read(request)
    return await _page(request, {**_where(found), "ids": []}, found)


@router.get("/runners/all", dependencies=[Depends(require_admin)], **doc(_FILTERS, listing=True, answer=LIST))
async def all_runners(request: Request) -> JSONResponse:
    found = await params.read(request)
    return await _page(request, _where(found), found)


@router.get("/runners/{runner_id}", dependencies=[Depends(require_admin)], **doc(answer=OBJECT))
async def get_runner(request: Request, runner_id: int) -> dict[str, Any]:
    row, managers = await services(request).runner_admin.get(runner_id)
    return presenters.runner(row, details=True, managers=managers)


@router.put("/runners/{runner_id}", dependencies=[Depends(require_admin)], **doc(body=_SETTINGS, answer=OBJECT))
async def edit_runner(request: Request, runner_id: int) -> dict[str, Any]:
    """Change settings; ``paused`` (or its deprecated inverse ``active``) pauses the runner."""
    found = await params.read(request)
    changes: dict[str, Any] = {}
    for name in ("description",):
        if name in found:
            changes[name] = params.text(found, name) or ""
    for flag in ("paused", "run_untagged", "locked"):
        if flag in found:
            changes[flag] = params.boolean(found, flag)
    if "active" in found:
        if "paused" in found:
            raise BadRequest("400 Bad request - paused, active are mutually exclusive")
        changes["paused"] = not params.boolean(found, "active")
    if "tag_list" in found:
        tags = found["tag_list"]
        changes["tag_list"] = tags if isinstance(tags, (str, list)) else str(tags)
    if "access_level" in found:
        changes["access_level"] = params.choice(found, "access_level", ("not_protected", "ref_protected"))
    if "maximum_timeout" in found:
        changes["maximum_timeout"] = _integer(found, "maximum_timeout")
    row = await services(request).runner_admin.update(runner_id, changes)
    return presenters.runner(row, details=True)


def _integer(found: dict[str, Any], name: str) -> int | None:
    value = found.get(name)
    if value in (None, ""):
        return None
    try:
        return int(str(value))
    except ValueError:
        raise BadRequest(f"400 Bad request - {name} is invalid") from None


@router.delete("/runners/{runner_id}", status_code=204, dependencies=[Depends(require_admin)])
async def delete_runner(request: Request, runner_id: int) -> Response:
    await services(request).runner_admin.delete(runner_id)
    return Response(status_code=204)


@router.get("/runners/{runner_id}/jobs", dependencies=[Depends(require_admin)], **doc(
    ("status", "order_by", "sort"), listing=True, answer=LIST))
async def runner_jobs(request: Request, runner_id: int) -> JSONResponse:
    """The jobs the runner ran or runs (``status`` narrows), each with its ``project``."""
    svc = services(request)
    found = await params.read(request)
    await svc.runner_admin.get(runner_id)
    page = pagination.page_of(found)
    status = params.choice(found, "status", STATUSES)
    params.choice(found, "order_by", ("id",))
    sort = params.choice(found, "sort", ("asc", "desc"), "desc") or "desc"
    rows, total = await svc.listings.runner_jobs(runner_id, [status] if status else [], sort, Window(page.limit, page.offset))
    found_artifacts = await svc.listings.artifacts([r["id"] for r in rows])
    base = svc.settings.base_url
    shown = []
    for row in rows:
        item = presenters.job(row, base, row["project_name"], found_artifacts.get(row["id"], ()))
        item["project"] = {"id": row["project_id"], "name": row["project_name"], "path_with_namespace": row["project_name"]}
        shown.append(item)
    return pagination.respond(request, shown, page, total)


@router.get("/projects/{project}/runners", **doc(_FILTERS, listing=True, answer=LIST))
async def project_runners(request: Request, access: Maintainer) -> JSONResponse:
    """The runners that can run the project's jobs: every instance runner."""
    found = await params.read(request)
    return await _page(request, _where(found), found)
