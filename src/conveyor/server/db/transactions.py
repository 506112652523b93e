"""``transaction``: run a short unit of work in its own transaction, again if PostgreSQL broke a
deadlock by aborting it. ``single_statements``: an engine for work that is one statement.

Conveyor locks a pipeline before its jobs; the claim statement (``sql/queue.sql``) and the stuck
job sweep lock a job first and its pipeline second, so on rare occasions PostgreSQL finds a cycle
and aborts one side (SQLSTATE 40P01). The work is short and holds nothing outside the database,
so doing it again is safe; no savepoint is involved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

T = TypeVar("T")
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure


async def transaction(engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]], *, attempts: int = 3) -> T:
    for attempt in range(1, attempts + 1):
        try:
            async with engine.begin() as conn:
                return await work(conn)
        except DBAPIError as exc:
            if attempt == attempts or _sqlstate(exc) not in RETRYABLE_SQLSTATES:
                raise
            await asyncio.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def _sqlstate(exc: DBAPIError) -> str | None:
    orig = exc.orig
    return getattr(orig, "sqlstate", None) or getattr(getattr(orig, "__cause__", None), "sqlstate", None)


def single_statements(engine: AsyncEngine) -> AsyncEngine:
    """The same engine and pool, in autocommit: for a connection that runs ONE statement (a read,
    or one atomic write). Without it SQLAlchemy wraps even a lone SELECT in BEGIN ... ROLLBACK,
    two extra round trips on hot paths such as a log PATCH's job lookup. Every statement still
    passes the engine's hooks. Never run two statements that must be atomic together on it."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")
