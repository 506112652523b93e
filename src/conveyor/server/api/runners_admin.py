"""GitLab's runners management API (rest-api.md 2.11): the caller's runners, every runner
(admin), show, edit (pause, tags...), delete, a runner's jobs, and a project's runners (list,
enable a project runner for another project, disable it).

Who may do what is ``accounts.runner_scopes``: administrators everything; a maintainer of a
project runner's owner project (an owner of a group runner's group) that runner. ``GET /runners``
lists the project and group runners the caller owns through its memberships (instance runners
are nobody's: administrators see them in ``/runners/all``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from conveyor.server.accounts.access import Actor
from conveyor.server.accounts.runners import parse_tags
from conveyor.server.api import pagination, params, presenters
from conveyor.server.api.deps import CurrentActor, Maintainer, require_admin, services
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


@router.get("/runners", **doc(_FILTERS, listing=True, answer=LIST))
async def my_runners(request: Request, actor: CurrentActor) -> JSONResponse:
    """The project runners of projects the caller maintains, the group runners of groups it owns."""
    found = await params.read(request)
    projects, groups = await services(request).runner_scopes.owned(actor)
    return await _page(request, {**_where(found), "serving": (projects, groups, False)}, found)


@router.get("/runners/all", dependencies=[Depends(require_admin)], **doc(_FILTERS, listing=True, answer=LIST))
async def all_runners(request: Request) -> JSONResponse:
    found = await params.read(request)
    return await _page(request, _where(found), found)


async def _details(request: Request, row: Any, managers: Any = ()) -> dict[str, Any]:
    svc = services(request)
    projects, groups = await svc.runner_scopes.of(int(row["id"]))
    return presenters.runner(
        row, details=True, managers=managers, projects=projects, groups=groups, base=svc.settings.base_url
    )


async def _authorized(request: Request, actor: Actor, runner_id: int) -> Any:
    """The runner and its managers, when ``actor`` may manage it (404, 403 otherwise)."""
    svc = services(request)
    row, managers = await svc.runner_admin.get(runner_id)
    await svc.runner_scopes.authorize(actor, row)
    return row, managers


@router.get("/runners/{runner_id}", **doc(answer=OBJECT))
async def get_runner(request: Request, runner_id: int, actor: CurrentActor) -> dict[str, Any]:
    row, managers = await _authorized(request, actor, runner_id)
    return await _details(request, row, managers)


@router.put("/runners/{runner_id}", **doc(body=_SETTINGS, answer=OBJECT))
async def edit_runner(request: Request, runner_id: int, actor: CurrentActor) -> dict[str, Any]:
    """Change settings; ``paused`` (or its deprecated inverse ``active``) pauses the runner."""
    await _authorized(request, actor, runner_id)
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
    return await _details(request, row)


def _integer(found: dict[str, Any], name: str) -> int | None:
    value = found.get(name)
    if value in (None, ""):
        return None
    try:
        return int(str(value))
    except ValueError:
        raise BadRequest(f"400 Bad request - {name} is invalid") from None


@router.delete("/runners/{runner_id}", status_code=204)
async def delete_runner(request: Request, runner_id: int, actor: CurrentActor) -> Response:
    svc = services(request)
    row, _ = await svc.runner_admin.get(runner_id)
    await svc.runner_scopes.deletable(actor, row)
    await svc.runner_admin.delete(runner_id)
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
    """The runners that can run the project's jobs: its project runners, its group's runners and
    every instance runner (``type`` narrows)."""
    found = await params.read(request)
    serving = ({access.project_id}, {int(access.project["namespace_id"])}, True)
    return await _page(request, {**_where(found), "serving": serving}, found)


@router.post("/projects/{project}/runners", status_code=201, **doc(body=("runner_id",), required=("runner_id",), answer=OBJECT, status=201))
async def enable_runner(request: Request, access: Maintainer) -> dict[str, Any]:
    """Let an existing project runner (one the caller manages) run this project's jobs too."""
    svc = services(request)
    found = await params.read(request)
    params.text(found, "runner_id", required=True)  # Grape's 400 {"error": "runner_id is missing"}
    row, _ = await svc.runner_admin.get(params.integer(found, "runner_id") or 0)
    await svc.runner_scopes.enable(access.actor, row, access.project_id)
    return presenters.runner(row)


@router.delete("/projects/{project}/runners/{runner_id}", status_code=204)
async def disable_runner(request: Request, access: Maintainer, runner_id: int) -> Response:
    """Stop the project runner from running this project's jobs (never its owner project's)."""
    await services(request).runner_scopes.disable(runner_id, access.project_id)
    return Response(status_code=204)
