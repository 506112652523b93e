"""Pipeline schedules (rest-api.md 2.9): cron in a time zone, active flag, owner, variables,
"run now"; and ``ScheduleFirer``, which every server process runs.

Firing, step by step (any number of server processes at once, no leader):
1. One short transaction takes the due schedules ``FOR UPDATE SKIP LOCKED`` (a schedule another
   process holds is skipped, never waited for) and moves each one's ``next_run_at`` to the first
   cron time after *now*, then commits. A schedule is therefore taken by one process per tick,
   and after downtime the ticks missed meanwhile collapse into one run.
2. Outside the transaction, each taken schedule's pipeline is created (git work may be slow):
   ``CI_PIPELINE_SOURCE=schedule``, its variables as pipeline variables.
A process dying between 1 and 2 loses that run (at most once, like GitLab's own worker).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from croniter import croniter
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.server import periodic
from conveyor.server.automation.triggers import OWNER
from conveyor.server.db import queries
from conveyor.server.errors import Invalid, NotFound
from conveyor.server.queue.pipelines import CreatedPipeline, Origin, Pipelines
from conveyor.server.variables import SecretBox, rules

log = structlog.get_logger(__name__)
# Rails' time zone names GitLab shows in its form, for the commonest ones (IANA names work too)
RAILS_ZONES = {"UTC": "UTC", "London": "Europe/London", "Berlin": "Europe/Berlin", "Paris": "Europe/Paris",
               "Pacific Time (US & Canada)": "America/Los_Angeles", "Eastern Time (US & Canada)": "America/New_York",
               "Central Time (US & Canada)": "America/Chicago", "Tokyo": "Asia/Tokyo"}


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(RAILS_ZONES.get(name, name))
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid({"cron_timezone": ["is invalid syntax"]}) from None


def next_run(cron: str, timezone_name: str, after: datetime | None = None) -> datetime:
    """The first time after ``after`` (now) that ``cron`` names in ``timezone_name``."""
    if len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise Invalid({"cron": ["is invalid syntax"]})
    start = (after or datetime.now(timezone.utc)).astimezone(zone(timezone_name))
    return croniter(cron, start).get_next(datetime).astimezone(timezone.utc)


class Schedules:
    def __init__(self, engine: AsyncEngine, pipelines: Pipelines, box: SecretBox) -> None:
        self._engine = engine
        self._pipelines = pipelines
        self._box = box

    async def create(self, project_id: int, values: dict[str, Any]) -> dict[str, Any]:
        values = {"cron_timezone": "UTC", "active": True, **values, "owner": OWNER}
        values["ref"] = values["ref"].removeprefix("refs/heads/")
        values["next_run_at"] = next_run(values["cron"], values["cron_timezone"])
        async with self._engine.begin() as conn:
            row = await queries.schedules.insert(conn, project_id, values)
        return await self.details(project_id, row["id"])

    async def list(self, project_id: int, active: bool | None, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """One page of the project's schedules (``active`` ones, inactive ones, or all) and how many."""
        async with self._engine.connect() as conn:
            rows, total = await queries.schedules.list_for(conn, project_id, active, limit, offset)
        return [present(row) for row in rows], total

    async def details(self, project_id: int, schedule_id: int) -> dict[str, Any]:
        row = await self._one(project_id, schedule_id)
        async with self._engine.connect() as conn:
            variables = await queries.schedules.variables(conn, schedule_id)
            ran = await queries.schedules.pipelines_of(conn, schedule_id)
        last = ran[-1] if ran else None
        return {
            **present(row),
            "last_pipeline": {k: last[k] for k in ("id", "sha", "ref", "status")} if last else None,
            "variables": [self._variable(v) for v in variables],
        }

    async def update(self, project_id: int, schedule_id: int, values: dict[str, Any]) -> dict[str, Any]:
        row = await self._one(project_id, schedule_id)
        if "ref" in values:
            values["ref"] = values["ref"].removeprefix("refs/heads/")
        merged = {**row, **values}
        values["next_run_at"] = next_run(merged["cron"], merged["cron_timezone"])
        async with self._engine.begin() as conn:
            await queries.schedules.update(conn, schedule_id, values)
        return await self.details(project_id, schedule_id)

    async def take_ownership(self, project_id: int, schedule_id: int) -> tuple[dict[str, Any], bool]:
        """The schedule, and whether its owner changed (201) or was already the caller (200)."""
        row = await self._one(project_id, schedule_id)
        if row["owner"] == OWNER:
            return await self.details(project_id, schedule_id), False
        async with self._engine.begin() as conn:
            await queries.schedules.update(conn, schedule_id, {"owner": OWNER})
        return await self.details(project_id, schedule_id), True

    async def delete(self, project_id: int, schedule_id: int) -> None:
        await self._one(project_id, schedule_id)
        async with self._engine.begin() as conn:
            await queries.schedules.delete(conn, schedule_id)

    async def pipelines(self, project_id: int, schedule_id: int, limit: int, offset: int) -> tuple[list[RowMapping], int]:
        """One page of the pipelines the schedule started and how many there are."""
        await self._one(project_id, schedule_id)
        async with self._engine.connect() as conn:
            return await queries.schedules.pipelines_page(conn, schedule_id, limit, offset)

    async def play(self, project: RowMapping, schedule_id: int) -> CreatedPipeline:
        return await self.run(project, await self._one(project["id"], schedule_id))

    async def run(self, project: RowMapping, schedule: RowMapping) -> CreatedPipeline:
        """Create the schedule's pipeline now: ``CI_PIPELINE_SOURCE=schedule``."""
        async with self._engine.connect() as conn:
            rows = await queries.schedules.variables(conn, schedule["id"])
        variables = {v["key"]: self._box.decrypt(v["value"]) for v in rows}
        files = tuple(v["key"] for v in rows if v["variable_type"] == "file")
        origin = Origin(source="schedule", schedule_id=schedule["id"], file_variables=files)
        return await self._pipelines.create(project, schedule["ref"], variables, origin)

    async def put_variable(
        self, project_id: int, schedule_id: int, key: str, value: str | None, variable_type: str | None, *, create: bool
    ) -> dict[str, Any]:
        await self._one(project_id, schedule_id)
        values: dict[str, Any] = {}
        if value is not None:
            values["value"] = self._box.encrypt(value)
        if variable_type is not None:
            values["variable_type"] = variable_type
        if create:
            if not rules.KEY.match(key):
                raise Invalid({"key": ["can contain only letters, digits and '_'."]})
        async with self._engine.begin() as conn:
            row = await queries.schedules.put_variable(conn, schedule_id, key, values, create=create) if values or create else None
        if row is None and create:
            raise Invalid({"key": [f"({key}) has already been taken"]})
        if row is None:
            raise NotFound("404 Pipeline Schedule Variable Not Found")
        return self._variable(row)

    async def delete_variable(self, project_id: int, schedule_id: int, key: str) -> dict[str, Any]:
        await self._one(project_id, schedule_id)
        async with self._engine.begin() as conn:
            row = await queries.schedules.delete_variable(conn, schedule_id, key)
        if row is None:
            raise NotFound("404 Pipeline Schedule Variable Not Found")
        return self._variable(row)

    def _variable(self, row: RowMapping) -> dict[str, Any]:
        return {"key": row["key"], "value": self._box.decrypt(row["value"]), "variable_type": row["variable_type"]}

    async def _one(self, project_id: int, schedule_id: int) -> RowMapping:
        async with self._engine.connect() as conn:
            row = await queries.schedules.get(conn, project_id, schedule_id)
        if row is None:
            raise NotFound("404 Pipeline Schedule Not Found")
        return row


class ScheduleFirer:
    """Fires due schedules every ``interval`` seconds (see the module's docstring)."""

    def __init__(self, engine: AsyncEngine, schedules: Schedules, on_created: Any, interval: float) -> None:
        self._engine = engine
        self._schedules = schedules
        self._on_created = on_created  # async (CreatedPipeline) -> None: wake the dispatcher
        self._interval = interval

    async def run(self) -> None:
        await periodic.every(self._interval, self.fire_due, log, "schedule pass failed")

    async def fire_due(self, limit: int = 20) -> list[int]:
        """One pass; returns the pipelines created."""
        now = datetime.now(timezone.utc)
        async with self._engine.begin() as conn:
            due = await queries.schedules.claim_due(conn, limit)
            for schedule in due:
                await queries.schedules.set_next_run(conn, schedule["id"], next_run(schedule["cron"], schedule["cron_timezone"], now))
        created = []
        for schedule in due:
            async with self._engine.connect() as conn:
                project = await queries.projects.get(conn, schedule["project_id"])
            try:
                pipeline = await self._schedules.run(project, schedule)
            except Exception as exc:  # a broken config or ref: GitLab records a failed pipeline; we log
                log.warning("scheduled pipeline not created", schedule=schedule["id"], error=str(exc))
                continue
            await self._on_created(pipeline)
            created.append(pipeline.id)
        return created


def present(row: RowMapping) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z") if value else None

    return {
        "id": row["id"],
        "description": row["description"],
        "ref": f"refs/heads/{row['ref']}",
        "cron": row["cron"],
        "cron_timezone": row["cron_timezone"],
        "next_run_at": iso(row["next_run_at"]),
        "active": row["active"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "owner": {"id": 1, "username": row["owner"], "name": row["owner"]} if row["owner"] else None,
    }
