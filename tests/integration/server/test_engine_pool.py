"""The engine's pool on a real PostgreSQL: a connection idle long enough is pinged before use (a
dead one replaced unseen), a busy one is not; ``single_statements`` runs without BEGIN."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from conveyor.server.db import StatementObserver, create_engine, single_statements

pytestmark = pytest.mark.integration


async def _backend_pid(engine) -> int:  # noqa: ANN001
    async with engine.connect() as conn:
        return (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar()


async def _terminate(database_url: str, pid: int) -> None:
    killer = create_engine(database_url, StatementObserver("raise"), pool_size=1)
    try:
        async with killer.connect() as conn:
            assert (await conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})).scalar()
    finally:
        await killer.dispose()
    await asyncio.sleep(0.2)


async def test_a_connection_idle_past_the_limit_is_pinged_and_replaced_when_dead(database_url: str) -> None:
    engine = create_engine(database_url, StatementObserver("raise"), pool_size=1, ping_after_idle=0.1)
    try:
        first = await _backend_pid(engine)
        await _terminate(database_url, first)  # PostgreSQL restarted, a firewall dropped it...
        assert await _backend_pid(engine) != first  # nobody saw an error
    finally:
        await engine.dispose()


async def test_a_connection_in_use_moments_ago_is_not_pinged(database_url: str) -> None:
    engine = create_engine(database_url, StatementObserver("raise"), pool_size=1, ping_after_idle=3600)
    try:
        first = await _backend_pid(engine)
        await _terminate(database_url, first)
        with pytest.raises(DBAPIError):  # no ping: the one statement on the dead connection fails
            await _backend_pid(engine)
        assert await _backend_pid(engine) != first  # and the pool connects afresh after it
    finally:
        await engine.dispose()


async def _transaction_starts(conn) -> tuple[object, object]:  # noqa: ANN001
    first = (await conn.execute(sa.text("SELECT now()"))).scalar()
    await conn.execute(sa.text("SELECT pg_sleep(0.01)"))
    return first, (await conn.execute(sa.text("SELECT now()"))).scalar()


async def test_single_statements_run_outside_any_transaction_block(database_url: str) -> None:
    engine = create_engine(database_url, StatementObserver("raise"), pool_size=1)
    try:
        async with single_statements(engine).connect() as conn:  # each statement its own transaction
            first, second = await _transaction_starts(conn)
            assert first < second
        async with engine.connect() as conn:  # the same pooled connection, back to one transaction (BEGIN)
            first, second = await _transaction_starts(conn)
            assert first == second
    finally:
        await engine.dispose()
