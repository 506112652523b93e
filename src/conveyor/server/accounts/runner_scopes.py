"""Project and group runners: who may see and manage a runner, and which projects it serves.

GitLab's rules, kept small: a project runner belongs to its owner project (the first it served)
and may be enabled for other projects by someone who maintains both; a group runner belongs to
one group and serves its projects; instance runners serve every project and only administrators
manage them. The caller's own runners (``GET /runners``) are, as GitLab's ``ci_owned_runners``,
the project runners of projects it maintains and the group runners of groups it owns, by
membership (an administrator's flag adds nothing there; ``/runners/all`` lists everything).
"""

from __future__ import annotations

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.server.accounts.access import Actor, Role
from conveyor.server.accounts.members import Members
from conveyor.server.db import queries
from conveyor.server.errors import Forbidden, Invalid, NotFound

NO_ACCESS = "403 Forbidden - No access granted"
LAST_PROJECT = "Only one project associated with the runner. Please remove the runner instead"


class RunnerScopes:
    def __init__(self, engine: AsyncEngine, members: Members) -> None:
        self._engine = engine
        self._members = members

    async def of(self, runner_id: int) -> tuple[list[RowMapping], list[RowMapping]]:
        """The projects (owner first) and groups the runner belongs to."""
        async with self._engine.connect() as conn:
            return await queries.runner_scopes.projects_of(conn, runner_id), await queries.runner_scopes.groups_of(conn, runner_id)

    async def owned(self, actor: Actor) -> tuple[set[int], set[int]]:
        """(projects the caller maintains, groups it owns), by membership."""
        async with self._engine.connect() as conn:
            return await queries.members.maintained(conn, actor.user_id or 0)

    async def authorize(self, actor: Actor, runner: RowMapping) -> None:
        """May ``actor`` see and change ``runner``: an administrator always; a maintainer of a
        project runner's owner project; an owner of a group runner's group. 403 otherwise."""
        if actor.admin:
            return
        projects, groups = await self.of(int(runner["id"]))
        if runner["runner_type"] == "project_type" and projects:
            if await self._members.role(actor, projects[0]) >= Role.MAINTAINER:
                return
        elif runner["runner_type"] == "group_type" and groups:
            if await self._members.group_role(actor, int(groups[0]["id"])) >= Role.OWNER:
                return
        raise Forbidden(NO_ACCESS)

    async def deletable(self, actor: Actor, runner: RowMapping) -> None:
        """GitLab's order: a non-administrator may not delete a runner other projects use, then
        ``authorize``."""
        if actor.admin:
            return
        projects, _ = await self.of(int(runner["id"]))
        if len(projects) > 1:
            raise Forbidden("403 Forbidden - Runner associated with more than one project")
        await self.authorize(actor, runner)

    async def enable(self, actor: Actor, runner: RowMapping, project_id: int) -> None:
        """Let the project runner serve ``project_id`` too (the caller maintains that project).
        GitLab's checks in its order: group runner, then (non-administrators) locked, access."""
        if runner["runner_type"] == "group_type":
            raise Forbidden("403 Forbidden - Runner is a group runner")
        if not actor.admin:
            if runner["locked"]:
                raise Forbidden("403 Forbidden - Runner is locked")
            await self.authorize(actor, runner)
        if runner["runner_type"] == "instance_type":  # GitLab's model validation (no_projects)
            raise Invalid({"runner": ["cannot have projects assigned"]})
        async with self._engine.begin() as conn:
            await queries.runner_scopes.lock_projects(conn, int(runner["id"]))
            if not await queries.runner_scopes.add_project(conn, int(runner["id"]), project_id):
                raise Invalid({"runner_id": ["has already been taken"]})

    async def disable(self, runner_id: int, project_id: int) -> None:
        """Stop serving ``project_id``; never the owner project (delete the runner instead)."""
        async with self._engine.begin() as conn:
            served = await queries.runner_scopes.lock_projects(conn, runner_id)
            if project_id not in served:
                raise NotFound("404 Runner Not Found")
            if served[0] == project_id:
                raise Forbidden(f"403 Forbidden - {LAST_PROJECT}")
            await queries.runner_scopes.remove_project(conn, runner_id, project_id)
