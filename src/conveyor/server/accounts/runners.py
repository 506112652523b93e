"""Runners: create (token shown once), authenticate by token, record contact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.protocol import RunnerInfo
from conveyor.server import auth
from conveyor.server.db import queries
from conveyor.server.errors import Forbidden

CONTACT_GRANULARITY = timedelta(seconds=60)  # contacted_at is written at most once a minute


class Runners:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, description: str) -> tuple[int, str]:
        token = auth.generate(auth.RUNNER_PREFIX)
        async with self._engine.begin() as conn:
            runner_id = await queries.runners.insert(conn, auth.digest(token), description)
        return runner_id, token

    async def authenticate(self, token: str, system_id: str | None, info: RunnerInfo | None) -> RowMapping:
        """The runner owning ``token``; 403 for an unknown token (runner-api.md 2.4, 3.2)."""
        async with self._engine.connect() as conn:
            runner = await queries.runners.by_token(conn, auth.digest(token))
        if runner is None:
            raise Forbidden("403 Forbidden")
        contacted = runner["contacted_at"]
        if contacted is None or datetime.now(UTC) - contacted > CONTACT_GRANULARITY:
            async with self._engine.begin() as conn:
                info_dict = info.model_dump(mode="json") if info else None
                await queries.runners.touch(conn, runner["id"], system_id, info_dict)
        return runner
