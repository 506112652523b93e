"""A push whose pipeline takes longer than the forge waits is answered ``accepted`` and its
pipeline still appears, once; real PostgreSQL, a real git repository, the real pipeline builder."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa

from conveyor.server.automation import PushReceiver
from conveyor.server.automation.forges import ZERO_SHA, Push
from conveyor.server.db import StatementObserver, create_engine, queries
from conveyor.server.db.tables import pipelines, push_events
from conveyor.server.queue import Pipelines
from conveyor.server.sources import GitSources
from conveyor.server.variables import SecretBox
from tests.plugins.repos import make_repo

pytestmark = pytest.mark.integration


async def test_a_slow_push_is_accepted_then_built_once(database_url: str, tmp_path: Path) -> None:
    sha = make_repo(tmp_path / "repo", "job:\n  script: [echo hi]\n")
    engine = create_engine(database_url, StatementObserver("raise"), pool_size=3)
    started: list[int] = []

    async def on_created(created) -> None:  # noqa: ANN001
        started.append(created.id)

    try:
        async with engine.begin() as conn:
            project = await queries.projects.insert(conn, "repo", str(tmp_path / "repo"), "main")
        receiver = PushReceiver(engine, Pipelines(engine, GitSources(tmp_path / "mirrors")), SecretBox(None), on_created)
        push = Push(ref="main", tag=False, before=ZERO_SHA, after=sha, deleted=False, delivery_id="github:1", message="")
        outcome = await receiver.start(project, "github", push, background_after=0)
        assert outcome.status == "accepted"
        again = await receiver.start(project, "github", push, background_after=0)
        assert again.status == "duplicate"
        for _ in range(100):
            if started:
                break
            await asyncio.sleep(0.05)
        async with engine.connect() as conn:
            linked = (await conn.execute(sa.select(push_events.c.pipeline_id))).scalars().all()
            made = (await conn.execute(sa.select(pipelines.c.id, pipelines.c.source))).all()
        assert linked == started and [tuple(row) for row in made] == [(started[0], "push")]
        await receiver.aclose()
    finally:
        await engine.dispose()
