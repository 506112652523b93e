"""GitLab's projects API (rest-api.md 2.3): list, get, create from a git URL or local path
(``import_url``), edit, delete; and the project's environments, deployments and test report."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from conveyor.server.api import pagination, params, presenters
from conveyor.server.api.deps import CurrentActor, Developer, Guest, Maintainer, Owner, Reporter, services
from conveyor.server.api.openapi import LIST, OBJECT, doc
from conveyor.server.errors import ParamError

router = APIRouter(prefix="/api/v4")
ORDERS = ("id", "name", "path", "created_at", "updated_at", "last_activity_at")
_FIELDS = ("name", "path", "description", "import_url", "default_branch", "visibility", "ci_config_path")


@router.get("/projects", **doc(
    ("search", "membership", "owned", "simple", "order_by", "sort", "statistics"), listing=True, answer=LIST))
async def list_projects(request: Request, actor: CurrentActor) -> JSONResponse:
    """Projects the caller sees (an administrator: all; others: theirs, as members, through a
    group or in their namespace): ``search`` in the name, ``order_by`` (``created_at`` default),
    ``sort`` (``desc`` default), ``simple`` for the short form. ``membership`` and ``owned`` are
    accepted; they narrow nothing beyond what the caller sees."""
    svc = services(request)
    found = await params.read(request)
    page = pagination.page_of(found)
    order_by = params.choice(found, "order_by", ORDERS, "created_at") or "created_at"
    sort = params.choice(found, "sort", ("asc", "desc"), "desc") or "desc"
    simple = bool(params.boolean(found, "simple", False))
    params.boolean(found, "membership")
    params.boolean(found, "owned")
    ids = await svc.members.visible_ids(actor)
    rows, total = await svc.projects.page(params.text(found, "search"), order_by, sort, page.limit, page.offset, ids)
    base = svc.settings.base_url
    return pagination.respond(request, [presenters.project(r, base, simple=simple) for r in rows], page, total)


@router.get("/projects/{project}", **doc(("statistics",), answer=OBJECT))
async def get_project(request: Request, access: Guest) -> dict[str, Any]:
    shown = presenters.project(access.project, services(request).settings.base_url)
    shown["permissions"] = {"project_access": {"access_level": int(access.role), "notification_level": 3}, "group_access": None}
    return shown


@router.post("/projects", status_code=201, **doc(
    body=(*_FIELDS, "namespace_id"), answer=OBJECT, status=201))
async def create_project(request: Request, actor: CurrentActor) -> dict[str, Any]:
    """A project from ``import_url`` (a git URL or a local path; ``source`` is Conveyor's older
    name), named ``name`` or ``path`` (else after the repository), in ``namespace_id`` (a group
    the caller maintains) or the caller's own namespace."""
    found = await params.read(request)
    source = params.text(found, "import_url") or params.text(found, "source")
    if not source:
        raise ParamError("import_url is missing")
    name = params.text(found, "name") or params.text(found, "path")
    svc = services(request)
    namespace_id = await svc.members.namespace_for_new_project(actor, params.integer(found, "namespace_id"))
    return presenters.project(await svc.projects.add(name, source, namespace_id), svc.settings.base_url)


@router.put("/projects/{project}", **doc(body=_FIELDS, answer=OBJECT))
async def edit_project(request: Request, access: Maintainer) -> dict[str, Any]:
    """Rename (``name`` or ``path``), change ``default_branch`` or the repository (``import_url``)."""
    found = await params.read(request)
    changes: dict[str, str] = {}
    name = params.text(found, "name") or params.text(found, "path")
    if name:
        changes["name"] = name
    if params.text(found, "default_branch"):
        changes["default_branch"] = params.text(found, "default_branch") or ""
    if params.text(found, "import_url"):
        changes["source"] = params.text(found, "import_url") or ""
    svc = services(request)
    row = await svc.projects.update(access.project, changes) if changes else access.project
    return presenters.project(row, svc.settings.base_url)


@router.delete("/projects/{project}", status_code=202, **doc(answer=OBJECT, status=202))
async def delete_project(request: Request, access: Owner) -> JSONResponse:
    """Delete the project with its pipelines, logs and artifacts: GitLab's 202."""
    await services(request).removal.delete_project(access.project_id)
    return JSONResponse({"message": "202 Accepted"}, status_code=202)


@router.get("/projects/{project}/environments", **doc(listing=True, answer=LIST))
async def list_environments(request: Request, access: Reporter) -> JSONResponse:
    found = await params.read(request)
    return pagination.respond_all(request, await services(request).deployments.environments(access.project_id), found)


@router.get("/projects/{project}/deployments", **doc(listing=True, answer=LIST))
async def list_deployments(request: Request, access: Reporter) -> JSONResponse:
    found = await params.read(request)
    return pagination.respond_all(request, await services(request).deployments.list(access.project_id), found)


@router.post("/projects/{project}/environments/{environment_id}/stop", **doc(answer=OBJECT))
async def stop_environment(request: Request, access: Developer, environment_id: int) -> dict[str, Any]:
    """Stop an environment: its on_stop job is played (GitLab's ``Environments::StopService``)."""
    return await services(request).deployments.stop(access.project_id, environment_id)
