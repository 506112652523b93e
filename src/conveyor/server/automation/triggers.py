"""Pipeline trigger tokens and ``POST /projects/:id/trigger/pipeline`` (rest-api.md 2.8).

A token (``glptt-`` + 32 random bytes) is shown whole once, at creation; it is stored as its
SHA-256 digest (server/auth.py), so later reads show its first 4 characters only.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.server import auth
from conveyor.server.db import queries
from conveyor.server.errors import BadRequest, Forbidden, NotFound
from conveyor.server.queue.pipelines import CreatedPipeline, Origin, Pipelines

OWNER = "root"  # every API caller is an administrator until users exist (issue 20)
NOT_A_MAP = "variables needs to be a map of key-valued strings"


class Triggers:
    def __init__(self, engine: AsyncEngine, pipelines: Pipelines) -> None:
        self._engine = engine
        self._pipelines = pipelines

    async def create(self, project_id: int, description: str, expires_at: date | None) -> dict[str, Any]:
        token = auth.generate(auth.TRIGGER_PREFIX)
        values = {"description": description, "expires_at": expires_at, "owner": OWNER}
        async with self._engine.begin() as conn:
            row = await queries.triggers.insert(conn, project_id, auth.digest(token), token[:4], values)
        return present(row, token)

    async def list(self, project_id: int, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """One page of the project's trigger tokens and how many there are."""
        async with self._engine.connect() as conn:
            rows, total = await queries.triggers.list_for(conn, project_id, limit, offset)
        return [present(row) for row in rows], total

    async def get(self, project_id: int, trigger_id: int) -> dict[str, Any]:
        return present(await self._one(project_id, trigger_id))

    async def update(self, project_id: int, trigger_id: int, values: dict[str, Any]) -> dict[str, Any]:
        await self._one(project_id, trigger_id)
        async with self._engine.begin() as conn:
            row = await queries.triggers.update(conn, trigger_id, values)
        assert row is not None
        return present(row)

    async def delete(self, project_id: int, trigger_id: int) -> None:
        await self._one(project_id, trigger_id)
        async with self._engine.begin() as conn:
            await queries.triggers.delete(conn, trigger_id)

    async def run(
        self,
        project: RowMapping,
        token: str | None,
        ref: str,
        variables: Any,
        *,
        from_hook: bool = False,
        payload: str | None = None,
    ) -> CreatedPipeline:
        """Start a pipeline for a trigger token (``CI_PIPELINE_SOURCE=trigger``) or a running
        job's ``CI_JOB_TOKEN`` (``pipeline``, as GitLab's multi-project triggers).

        Args:
            from_hook: the call carries ``X-Gitlab-Event: Pipeline Hook`` (a hook calling a
                trigger): refused, as GitLab does, so hooks and triggers cannot loop.
            payload: the request body when called as a forge's webhook URL (``ref/:ref/trigger``):
                it reaches the jobs as the file variable ``TRIGGER_PAYLOAD``.
        """
        if from_hook:
            raise Forbidden("403 Forbidden")
        if variables is None:
            variables = {}
        if not isinstance(variables, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
        ):
            raise BadRequest(NOT_A_MAP)
        today = datetime.now(timezone.utc).date()
        async with self._engine.begin() as conn:
            if (token or "").startswith(auth.JOB_PREFIX):  # CI_JOB_TOKEN of a running job
                job = await queries.triggers.running_job(conn, auth.digest(token or ""))
                trigger = None
            else:
                job = None
                trigger = await queries.triggers.use(conn, project["id"], auth.digest(token or ""), today)
        if trigger is None and job is None:
            raise NotFound("404 Not Found")
        files: tuple[str, ...] = ()
        if payload is not None:
            variables = {**variables, "TRIGGER_PAYLOAD": payload}
            files = ("TRIGGER_PAYLOAD",)
        origin = Origin(
            source="pipeline" if job is not None else "trigger",
            trigger_id=trigger["id"] if trigger is not None else None,
            file_variables=files,
        )
        return await self._pipelines.create(project, ref, variables, origin)

    async def _one(self, project_id: int, trigger_id: int) -> RowMapping:
        async with self._engine.connect() as conn:
            row = await queries.triggers.get(conn, project_id, trigger_id)
        if row is None:
            raise NotFound("404 Trigger Not Found")
        return row


def present(row: RowMapping, token: str | None = None) -> dict[str, Any]:
    """GitLab's trigger object; the whole token only in the creation answer."""
    return {
        "id": row["id"],
        "description": row["description"],
        "token": token or row["token_head"],
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
        "last_used": _iso(row["last_used"]),
        "expires_at": row["expires_at"].isoformat() if row["expires_at"] else None,
        "owner": {"id": 1, "username": row["owner"], "name": row["owner"]} if row["owner"] else None,
    }


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z") if value else None
