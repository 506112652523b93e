"""Membership over GitLab's REST API: project and group members with access levels, groups
(create, list, get) and namespaces."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.engine import RowMapping

from conveyor.server.accounts.access import Access, Actor, Role
from conveyor.server.accounts.members import access_level
from conveyor.server.api import params
from conveyor.server.api.deps import CurrentActor, Guest, Maintainer, services
from conveyor.server.api.users import basic_user, timestamp
from conveyor.server.errors import Forbidden, NotFound, ParamError

router = APIRouter(prefix="/api/v4")


def _member(request: Request, row: RowMapping) -> dict[str, Any]:
    member = basic_user(request, row)
    member.update(
        access_level=row["access_level"], created_at=timestamp(row["created_at"]),
        expires_at=row["expires_at"].isoformat() if row["expires_at"] else None, membership_state="active",
    )  # fmt: skip
    return member


def namespace_body(request: Request, row: RowMapping) -> dict[str, Any]:
    base = services(request).settings.base_url.rstrip("/")
    return {
        "id": row["id"], "name": row["name"], "path": row["path"], "kind": row["kind"], "full_path": row["path"],
        "parent_id": None, "avatar_url": None, "web_url": f"{base}/{'groups/' if row['kind'] == 'group' else ''}{row['path']}",
    }  # fmt: skip


def _group(request: Request, row: RowMapping) -> dict[str, Any]:
    group = namespace_body(request, row)
    group.update(description=row["description"], visibility="private", full_name=row["name"], created_at=timestamp(row["created_at"]))
    return group


def _level(given: dict[str, Any], granter: Role) -> Role:
    if given.get("access_level") in (None, ""):
        raise ParamError("access_level is missing")
    level = access_level(given["access_level"])
    if level > granter:  # only an owner makes owners
        raise Forbidden("403 Forbidden")
    return level


def _user_id(given: dict[str, Any]) -> int:
    raw = given.get("user_id")
    if raw in (None, ""):
        raise ParamError("user_id is missing")
    if not str(raw).isdigit():
        raise ParamError("user_id is invalid")
    return int(str(raw))


async def _members(request: Request, access: Access, inherited: bool) -> list[RowMapping]:
    project = access.project
    return await services(request).members.of_project(int(project["id"]), inherited=inherited, namespace_id=int(project["namespace_id"]))


@router.get("/projects/{project}/members")
async def project_members(request: Request, access: Guest) -> list[dict[str, Any]]:
    return [_member(request, m) for m in await _members(request, access, False)]


@router.get("/projects/{project}/members/all")
async def project_members_all(request: Request, access: Guest) -> list[dict[str, Any]]:
    """Direct members and those of the project's group (the higher level wins)."""
    return [_member(request, m) for m in await _members(request, access, True)]


@router.get("/projects/{project}/members/{user_id}")
async def project_member(request: Request, access: Guest, user_id: int) -> dict[str, Any]:
    return _one(request, await _members(request, access, False), user_id)


@router.get("/projects/{project}/members/all/{user_id}")
async def project_member_all(request: Request, access: Guest, user_id: int) -> dict[str, Any]:
    return _one(request, await _members(request, access, True), user_id)


def _one(request: Request, rows: list[RowMapping], user_id: int) -> dict[str, Any]:
    for row in rows:
        if row["id"] == user_id:
            return _member(request, row)
    raise NotFound("404 Member Not Found")


@router.post("/projects/{project}/members", status_code=201)
async def add_project_member(request: Request, access: Maintainer) -> dict[str, Any]:
    given = await params.read(request)
    row = await services(request).members.set(
        project_id=access.project_id, user_id=_user_id(given), level=_level(given, access.role), expires_at=None
    )
    return _member(request, row)


@router.put("/projects/{project}/members/{user_id}")
async def edit_project_member(request: Request, access: Maintainer, user_id: int) -> dict[str, Any]:
    given = await params.read(request)
    row = await services(request).members.set(project_id=access.project_id, user_id=user_id, level=_level(given, access.role), update=True)
    return _member(request, row)


@router.delete("/projects/{project}/members/{user_id}", status_code=204)
async def remove_project_member(request: Request, access: Maintainer, user_id: int) -> Response:
    await services(request).members.remove(project_id=access.project_id, user_id=user_id)
    return Response(status_code=204)


async def _group_access(request: Request, group: str, actor: Actor, role: Role) -> tuple[RowMapping, Role]:
    """The group and the caller's level in it: 404 for a non-member, 403 when too low."""
    svc = services(request)
    row = await svc.users.namespace(group, kind="group")
    granted = await svc.members.group_role(actor, int(row["id"]))
    if granted < Role.GUEST:
        raise NotFound("404 Group Not Found")
    if granted < role:
        raise Forbidden("403 Forbidden")
    return row, granted


@router.get("/groups")
async def list_groups(request: Request, actor: CurrentActor) -> list[dict[str, Any]]:
    given = await params.read(request)
    found = await services(request).users.namespaces("group", None if actor.admin else actor.user_id, params.text(given, "search"))
    return [_group(request, g) for g in found]


@router.post("/groups", status_code=201)
async def create_group(request: Request, actor: CurrentActor) -> dict[str, Any]:
    """A top-level group (``name``, ``path``); its creator is its owner."""
    given = await params.read(request)
    missing = [n for n in ("name", "path") if not given.get(n)]
    if missing:
        raise ParamError(", ".join(f"{name} is missing" for name in missing))
    row = await services(request).users.create_group(
        str(given["name"]), str(given["path"]), actor.user_id or 0, params.text(given, "description") or ""
    )
    return _group(request, row)


@router.get("/groups/{group}")
async def get_group(request: Request, group: str, actor: CurrentActor) -> dict[str, Any]:
    row, _ = await _group_access(request, group, actor, Role.GUEST)
    return _group(request, row)


@router.get("/groups/{group}/members")
async def group_members(request: Request, group: str, actor: CurrentActor) -> list[dict[str, Any]]:
    row, _ = await _group_access(request, group, actor, Role.GUEST)
    return [_member(request, m) for m in await services(request).members.of_group(int(row["id"]))]


@router.post("/groups/{group}/members", status_code=201)
async def add_group_member(request: Request, group: str, actor: CurrentActor) -> dict[str, Any]:
    row, granted = await _group_access(request, group, actor, Role.MAINTAINER)
    given = await params.read(request)
    member = await services(request).members.set(group_id=int(row["id"]), user_id=_user_id(given), level=_level(given, granted))
    return _member(request, member)


@router.put("/groups/{group}/members/{user_id}")
async def edit_group_member(request: Request, group: str, user_id: int, actor: CurrentActor) -> dict[str, Any]:
    row, granted = await _group_access(request, group, actor, Role.MAINTAINER)
    given = await params.read(request)
    member = await services(request).members.set(group_id=int(row["id"]), user_id=user_id, level=_level(given, granted), update=True)
    return _member(request, member)


@router.delete("/groups/{group}/members/{user_id}", status_code=204)
async def remove_group_member(request: Request, group: str, user_id: int, actor: CurrentActor) -> Response:
    row, _ = await _group_access(request, group, actor, Role.MAINTAINER)
    await services(request).members.remove(group_id=int(row["id"]), user_id=user_id)
    return Response(status_code=204)


@router.get("/namespaces")
async def list_namespaces(request: Request, actor: CurrentActor) -> list[dict[str, Any]]:
    given = await params.read(request)
    found = await services(request).users.namespaces(None, None if actor.admin else actor.user_id, params.text(given, "search"))
    return [namespace_body(request, n) for n in found]


@router.get("/namespaces/{namespace}")
async def get_namespace(request: Request, namespace: str, actor: CurrentActor) -> dict[str, Any]:
    row = await services(request).users.namespace(namespace)
    if not actor.admin and row["owner_id"] != actor.user_id and await services(request).members.group_role(actor, int(row["id"])) < Role.GUEST:
        raise NotFound("404 Namespace Not Found")
    return namespace_body(request, row)
