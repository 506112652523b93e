"""db.transaction: a unit of work PostgreSQL aborts to break a deadlock is run again."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import DBAPIError

from conveyor.server.db import StatementObserver, create_engine, queries, transaction

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(database_url: str):  # noqa: ANN201
    engine = create_engine(database_url, StatementObserver("raise"), pool_size=5)
    yield engine
    await engine.dispose()


async def _two_pipelines(engine) -> tuple[int, int]:  # noqa: ANN001
    async with engine.begin() as conn:
        project = await queries.projects.insert(conn, "p", "/tmp/p", "main")
        first = await queries.pipelines.insert(conn, project["id"], "main", "0" * 40, {})
        second = await queries.pipelines.insert(conn, project["id"], "main", "0" * 40, {})
    return first, second


async def test_a_deadlock_victim_is_run_again(engine) -> None:  # noqa: ANN001
    first, second = await _two_pipelines(engine)
    other_holds_first, mine_holds_second = asyncio.Event(), asyncio.Event()
    attempts = 0

    async def other() -> None:  # first, then second
        async with engine.begin() as conn:
            await queries.pipelines.lock(conn, first)
            other_holds_first.set()
            await mine_holds_second.wait()
            await asyncio.sleep(0.2)  # mine is already waiting for `first`: it detects the cycle first
            await queries.pipelines.lock(conn, second)

    async def mine(conn) -> int:  # noqa: ANN001  second, then first: the opposite order
        nonlocal attempts
        attempts += 1
        await queries.pipelines.lock(conn, second)
        if attempts == 1:
            mine_holds_second.set()
        await queries.pipelines.lock(conn, first)
        return attempts

    task = asyncio.create_task(other())
    await other_holds_first.wait()
    assert await transaction(engine, mine) == 2
    await task


async def test_other_errors_are_not_retried(engine) -> None:  # noqa: ANN001
    attempts = 0

    async def broken(conn) -> None:  # noqa: ANN001
        nonlocal attempts
        attempts += 1
        await queries.pipelines.insert(conn, 999_999, "main", "0" * 40, {})  # no such project

    with pytest.raises(DBAPIError):
        await transaction(engine, broken)
    assert attempts == 1
