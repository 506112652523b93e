"""Polls and schedules are taken once however many processes look: SKIP LOCKED claims that move
the due time on before they commit; a hook's delivery is leased to one process at a time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from conveyor.server.db import StatementObserver, create_engine, queries
from conveyor.server.db.tables import hook_deliveries, pipeline_schedules, project_hooks, project_sources

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(database_url: str):  # noqa: ANN201
    engine = create_engine(database_url, StatementObserver("raise"), pool_size=4)
    async with engine.begin() as conn:
        project = await queries.projects.insert(conn, "p", "/nowhere", "main")
        await queries.sources.configure(conn, project["id"], {"poll_interval": 60})
        await conn.execute(pipeline_schedules.insert().values(
            project_id=project["id"], description="d", ref="main", cron="0 3 * * *",
            next_run_at=datetime.now(timezone.utc) - timedelta(days=3)))
        await conn.execute(pipeline_schedules.insert().values(  # switched off: never taken
            project_id=project["id"], description="off", ref="main", cron="* * * * *", active=False,
            next_run_at=datetime.now(timezone.utc) - timedelta(days=3)))
        hook = (await conn.execute(project_hooks.insert().values(
            project_id=project["id"], url="http://127.0.0.1:9/", uuid="u", pipeline_events=True,
        ).returning(project_hooks.c.id))).scalar_one()
        await queries.hooks.enqueue(conn, hook, "Pipeline Hook", "e1", {"object_kind": "pipeline", "id": 1})
    yield engine
    await engine.dispose()


async def test_a_due_poll_is_taken_by_one_process(engine) -> None:  # noqa: ANN001
    async with engine.begin() as first:
        taken = await queries.sources.claim_due_polls(first, 10)
        async with engine.begin() as second:  # another process meanwhile: skips the locked row
            assert await queries.sources.claim_due_polls(second, 10) == []
    assert len(taken) == 1 and taken[0]["next_poll_at"] > datetime.now(timezone.utc) + timedelta(seconds=50)
    async with engine.begin() as later:  # and after the commit it is not due any more
        assert await queries.sources.claim_due_polls(later, 10) == []
    async with engine.connect() as conn:
        assert (await conn.execute(sa.select(project_sources.c.poll_interval))).scalar_one() == 60


async def test_a_due_schedule_is_taken_by_one_process(engine) -> None:  # noqa: ANN001
    async with engine.begin() as first:
        due = await queries.schedules.claim_due(first, 10)
        async with engine.begin() as second:
            assert await queries.schedules.claim_due(second, 10) == []
        await queries.schedules.set_next_run(first, due[0]["id"], datetime.now(timezone.utc) + timedelta(hours=5))
    assert [row["description"] for row in due] == ["d"]
    async with engine.begin() as later:
        assert await queries.schedules.claim_due(later, 10) == []


async def test_a_delivery_is_leased_to_one_process(engine) -> None:  # noqa: ANN001
    async with engine.begin() as first:
        leased = await queries.hooks.claim_due(first, 10)
        async with engine.begin() as second:
            assert await queries.hooks.claim_due(second, 10) == []
    assert [(row["attempts"], row["url"]) for row in leased] == [(1, "http://127.0.0.1:9/")]
    async with engine.begin() as later:  # leased for a minute: not due again yet
        assert await queries.hooks.claim_due(later, 10) == []
    async with engine.connect() as conn:
        assert (await conn.execute(sa.select(hook_deliveries.c.next_attempt_at))).scalar_one() is not None


async def test_a_failing_hook_rests_after_four_failures(engine) -> None:  # noqa: ANN001
    async with engine.begin() as conn:
        hook_id = (await conn.execute(sa.select(project_hooks.c.id))).scalar_one()
        for _ in range(3):
            await queries.hooks.record_outcome(conn, hook_id, False)
    async with engine.begin() as conn:  # three failures: still sent
        assert (await conn.execute(sa.select(project_hooks.c.disabled_until))).scalar_one() is None
        await queries.hooks.record_outcome(conn, hook_id, False)
    async with engine.begin() as conn:
        until = (await conn.execute(sa.select(project_hooks.c.disabled_until))).scalar_one()
        assert timedelta(seconds=50) < until - datetime.now(timezone.utc) < timedelta(seconds=70)
        assert await queries.hooks.claim_due(conn, 10) == []  # its delivery waits
        await queries.hooks.record_outcome(conn, hook_id, True)
    async with engine.begin() as conn:
        assert len(await queries.hooks.claim_due(conn, 10)) == 1
