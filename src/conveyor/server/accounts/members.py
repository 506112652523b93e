"""Membership: a user's role in a project (direct, inherited from the project's group, or owner
of its own namespace; an administrator is an owner everywhere), and adding, changing and
removing members of projects and groups with GitLab's access levels."""

from __future__ import annotations

from datetime import date

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.server.accounts.access import Actor, Role
from conveyor.server.db import queries, single_statements
from conveyor.server.errors import Conflict, NotFound, ParamError

MEMBER_LEVELS = (Role.GUEST, Role.REPORTER, Role.DEVELOPER, Role.MAINTAINER, Role.OWNER)


def access_level(value: object) -> Role:
    """``access_level`` as GitLab takes it: 10, 20, 30, 40 or 50 (also as a string)."""
    try:
        role = Role(int(str(value)))
    except ValueError:
        raise ParamError("access_level does not have a valid value") from None
    if role not in MEMBER_LEVELS:
        raise ParamError("access_level does not have a valid value")
    return role


class Members:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._reads = single_statements(engine)

    async def role(self, actor: Actor, project: RowMapping) -> Role:
        if actor.admin:
            return Role.OWNER
        if actor.user_id is None:
            return Role.NO_ACCESS
        async with self._reads.connect() as conn:
            return Role(await queries.members.level(conn, int(project["id"]), actor.user_id))

    async def group_role(self, actor: Actor, namespace_id: int) -> Role:
        if actor.admin:
            return Role.OWNER
        async with self._reads.connect() as conn:
            return Role(await queries.members.group_owner_of_namespace(conn, namespace_id, actor.user_id or 0))

    async def of_project(self, project_id: int, *, inherited: bool, namespace_id: int) -> list[RowMapping]:
        """Direct members; with ``inherited`` also the group's, the higher level winning."""
        async with self._engine.connect() as conn:
            direct = await queries.members.of_project(conn, project_id)
            if not inherited:
                return direct
            group = await queries.members.of_group(conn, namespace_id)
        best: dict[int, RowMapping] = {}
        for row in [*group, *direct]:
            if row["id"] not in best or row["access_level"] > best[row["id"]]["access_level"]:
                best[row["id"]] = row
        return [best[k] for k in sorted(best)]

    async def of_group(self, namespace_id: int) -> list[RowMapping]:
        async with self._engine.connect() as conn:
            return await queries.members.of_group(conn, namespace_id)

    async def set(
        self, *, project_id: int | None = None, group_id: int | None = None, user_id: int, level: Role,
        expires_at: date | None = None, update: bool = False,
    ) -> RowMapping:
        """Add (409 "Member already exists") or change (404 "404 Member Not Found") a member."""
        async with self._engine.begin() as conn:
            if await queries.users.get(conn, user_id) is None:
                raise NotFound("404 User Not Found")
            if project_id is not None:
                done = await queries.members.upsert_project(conn, project_id, user_id, int(level), expires_at, update=update)
                rows = await queries.members.of_project(conn, project_id)
            else:
                assert group_id is not None
                done = await queries.members.upsert_group(conn, group_id, user_id, int(level), expires_at, update=update)
                rows = await queries.members.of_group(conn, group_id)
        if not done:
            raise NotFound("404 Member Not Found") if update else Conflict("Member already exists")
        return next(r for r in rows if r["id"] == user_id)

    async def remove(self, *, project_id: int | None = None, group_id: int | None = None, user_id: int) -> None:
        async with self._engine.begin() as conn:
            if project_id is not None:
                done = await queries.members.remove_project(conn, project_id, user_id)
            else:
                assert group_id is not None
                done = await queries.members.remove_group(conn, group_id, user_id)
        if not done:
            raise NotFound("404 Member Not Found")

    async def visible(self, actor: Actor, projects: list[RowMapping]) -> list[RowMapping]:
        """The projects the actor may see (all for an administrator)."""
        ids = await self.visible_ids(actor)
        return projects if ids is None else [p for p in projects if p["id"] in ids]

    async def visible_ids(self, actor: Actor) -> set[int] | None:
        """Ids of the projects the actor may see; None for an administrator (every project)."""
        if actor.admin:
            return None
        async with self._reads.connect() as conn:
            return await queries.members.project_ids(conn, actor.user_id or 0)

    async def namespace_for_new_project(self, actor: Actor, namespace_id: int | None) -> int:
        """Where a new project goes: ``namespace_id`` (the caller may create there: its own, or a
        group it maintains) or the caller's own namespace."""
        async with self._reads.connect() as conn:
            own = await queries.members.personal_namespace(conn, actor.user_id or 0)
        if namespace_id is None or namespace_id == own:
            if own is None:
                raise NotFound("404 Namespace Not Found")
            return own
        if await self.group_role(actor, namespace_id) < Role.MAINTAINER:
            raise NotFound("404 Namespace Not Found")
        return namespace_id
