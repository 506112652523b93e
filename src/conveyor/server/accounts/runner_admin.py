"""Runners as an administrator sees them (GitLab's ``/runners`` management API): list with
filters, show with managers, change settings (description, pause, tags...), delete by id."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.server.accounts.runners import RunnerOptions, parse_tags
from conveyor.server.db import queries
from conveyor.server.errors import BadRequest, NotFound

ONLINE_WITHIN = timedelta(hours=2)  # GitLab's Ci::Runner::ONLINE_CONTACT_TIMEOUT
STALE_AFTER = timedelta(days=7)  # GitLab's stale runners: no contact for 7 days
EDITABLE = ("description", "paused", "tag_list", "run_untagged", "locked", "access_level", "maximum_timeout")


def status_of(row: Mapping[str, Any], now: datetime | None = None) -> str:
    """GitLab's runner ``status``: online, offline, stale or never_contacted."""
    contacted = row["contacted_at"]
    now = now or datetime.now(UTC)
    if contacted is None:
        return "never_contacted"
    if now - contacted > STALE_AFTER:
        return "stale"
    return "online" if now - contacted <= ONLINE_WITHIN else "offline"


class RunnerAdmin:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def page(self, where: dict[str, Any], limit: int, offset: int) -> tuple[list[RowMapping], int]:
        """Runners matching ``where`` (see ``queries.browse.runners_page``) and their count."""
        status = where.get("status")
        if status in ("active", "paused"):  # GitLab's deprecated status values
            where = {**where, "status": None, "paused": status == "paused"}
        elif status == "stale":
            where = {**where, "online_since": datetime.now(UTC) - STALE_AFTER}
        elif status:
            where = {**where, "online_since": datetime.now(UTC) - ONLINE_WITHIN}
        async with self._engine.connect() as conn:
            return await queries.browse.runners_page(conn, where, limit, offset)

    async def get(self, runner_id: int) -> tuple[RowMapping, list[RowMapping]]:
        """The runner and its managers; ``404 Runner Not Found``."""
        async with self._engine.connect() as conn:
            row = await queries.runners.get(conn, runner_id)
            if row is None:
                raise NotFound("404 Runner Not Found")
            return row, await queries.runners.managers(conn, runner_id)

    async def update(self, runner_id: int, changes: dict[str, Any]) -> RowMapping:
        """Change settings; validated as at creation (400), ``tag_list`` as a list or CSV."""
        if not changes:
            raise BadRequest(
                "400 Bad request - description, active, paused, tag_list, run_untagged, locked, access_level, "
                "maximum_timeout, maintenance_note are missing, at least one parameter must be provided"
            )
        row, _ = await self.get(runner_id)
        merged = {f.name: row[f.name] for f in fields(RunnerOptions) if f.name in row}
        merged.update(changes)
        if "tag_list" in changes:
            merged["tag_list"] = parse_tags(changes["tag_list"])
        options = RunnerOptions.build(**{**merged, "tag_list": list(merged["tag_list"])})  # validates
        values = {k: v for k, v in options.columns().items() if k in changes}
        async with self._engine.begin() as conn:
            updated = await queries.runners.update(conn, runner_id, values)
        if updated is None:
            raise NotFound("404 Runner Not Found")
        return updated

    async def delete(self, runner_id: int) -> None:
        async with self._engine.begin() as conn:
            if not await queries.runners.delete_by_id(conn, runner_id):
                raise NotFound("404 Runner Not Found")
