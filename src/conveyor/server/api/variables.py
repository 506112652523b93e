"""GitLab's CI/CD variables API: ``/projects/:id/variables`` and ``/admin/ci/variables``
(rest-api.md 2.7). Every admin-token caller is a maintainer here, so values are returned, except
a masked-and-hidden variable's, which no one reads again after creation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from conveyor.server.api import pagination, params
from conveyor.server.api.deps import Maintainer, require_admin, services
from conveyor.server.api.openapi import LIST, OBJECT, doc
from conveyor.server.variables import rules

router = APIRouter(prefix="/api/v4")
_FLAGS = ("protected", "masked", "raw")


def _attributes(found: dict[str, Any], *, project: bool) -> rules.Attributes:
    hidden = bool(params.boolean(found, "masked_and_hidden", False)) if project else False
    return rules.Attributes(
        key=params.text(found, "key", required=True) or "",
        value=params.text(found, "value", required=True) or "",
        variable_type=params.choice(found, "variable_type", rules.TYPES, "env_var") or "env_var",
        protected=bool(params.boolean(found, "protected", False)),
        masked=bool(params.boolean(found, "masked", False)) or hidden,
        hidden=hidden,
        raw=bool(params.boolean(found, "raw", False)),
        environment_scope=(params.text(found, "environment_scope") or "*") if project else "*",
        description=params.text(found, "description"),
    )


def _changes(found: dict[str, Any], *, project: bool) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name in ("value", "description") + (("environment_scope",) if project else ()):
        if name in found:
            changes[name] = params.text(found, name)
    if "variable_type" in found:
        changes["variable_type"] = params.choice(found, "variable_type", rules.TYPES)
    for flag in _FLAGS:
        if flag in found:
            changes[flag] = params.boolean(found, flag)
    return changes


@router.get("/projects/{project}/variables", **doc(listing=True, answer=LIST))
async def list_project(request: Request, access: Maintainer) -> JSONResponse:
    page = pagination.page_of(await params.read(request))
    items, total = await services(request).variables.list(access.project_id, page.limit, page.offset)
    return pagination.respond(request, items, page, total)


@router.get("/projects/{project}/variables/{key}", **doc(("filter[environment_scope]",), answer=OBJECT))
async def get_project(request: Request, access: Maintainer, key: str) -> dict[str, Any]:
    found = await params.read(request)
    return await services(request).variables.get(access.project_id, key, params.filter_scope(found))


@router.post("/projects/{project}/variables", status_code=201, **doc(body=('key', 'value', 'variable_type', 'protected', 'masked', 'raw', 'masked_and_hidden', 'environment_scope', 'description'), required=("key", "value"), answer=OBJECT, status=201))
async def create_project(request: Request, access: Maintainer) -> dict[str, Any]:
    attrs = _attributes(await params.read(request), project=True)
    return await services(request).variables.create(access.project_id, attrs)


@router.put("/projects/{project}/variables/{key}", **doc(("filter[environment_scope]",), body=('value', 'variable_type', 'protected', 'masked', 'raw', 'masked_and_hidden', 'environment_scope', 'description'), answer=OBJECT))
async def update_project(request: Request, access: Maintainer, key: str) -> dict[str, Any]:
    found = await params.read(request)
    hidden = params.boolean(found, "masked_and_hidden") if "masked_and_hidden" in found else None
    return await services(request).variables.update(
        access.project_id, key, params.filter_scope(found), _changes(found, project=True), hidden
    )


@router.delete("/projects/{project}/variables/{key}", status_code=204, **doc(("filter[environment_scope]",)))
async def delete_project(request: Request, access: Maintainer, key: str) -> Response:
    found = await params.read(request)
    await services(request).variables.delete(access.project_id, key, params.filter_scope(found))
    return Response(status_code=204)


@router.get("/admin/ci/variables", dependencies=[Depends(require_admin)], **doc(listing=True, answer=LIST))
async def list_instance(request: Request) -> JSONResponse:
    page = pagination.page_of(await params.read(request))
    items, total = await services(request).variables.list(None, page.limit, page.offset)
    return pagination.respond(request, items, page, total)


@router.get("/admin/ci/variables/{key}", dependencies=[Depends(require_admin)], **doc(answer=OBJECT))
async def get_instance(request: Request, key: str) -> dict[str, Any]:
    return await services(request).variables.get(None, key)


@router.post("/admin/ci/variables", status_code=201, dependencies=[Depends(require_admin)], **doc(body=("key", "value", "variable_type", "protected", "masked", "raw", "description"), required=("key", "value"), answer=OBJECT, status=201))
async def create_instance(request: Request) -> dict[str, Any]:
    return await services(request).variables.create(None, _attributes(await params.read(request), project=False))


@router.put("/admin/ci/variables/{key}", dependencies=[Depends(require_admin)], **doc(body=("value", "variable_type", "protected", "masked", "raw", "description"), answer=OBJECT))
async def update_instance(request: Request, key: str) -> dict[str, Any]:
    return await services(request).variables.update(None, key, None, _changes(await params.read(request), project=False))


@router.delete("/admin/ci/variables/{key}", status_code=204, dependencies=[Depends(require_admin)])
async def delete_instance(request: Request, key: str) -> Response:
    await services(request).variables.delete(None, key)
    return Response(status_code=204)
