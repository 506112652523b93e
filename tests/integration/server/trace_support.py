"""What the trace store tests share: an engine and a Redis client on the session's services, and
a job to write a log for."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from conveyor.server.trace.hot_redis import HotRedis
from conveyor.server.db import StatementObserver, create_engine, queries


@pytest.fixture
async def engine(database_url: str):  # noqa: ANN201
    engine = create_engine(database_url, StatementObserver("raise"), pool_size=20)
    yield engine
    await engine.dispose()


@pytest.fixture
async def redis(redis_url: str):  # noqa: ANN201
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def hot(redis):  # noqa: ANN001, ANN201
    """The append path's lean client, for a RedisTraceStore built on ``redis``; closed after the test."""
    client = HotRedis.like(redis)
    yield client
    await client.aclose()


async def make_job(engine, project_name: str = "p") -> int:  # noqa: ANN001
    async with engine.begin() as conn:
        project = await queries.projects.insert(conn, project_name, f"/tmp/{project_name}", "main")
        pipeline = await queries.pipelines.insert(conn, project["id"], "main", "0" * 40, {})
        await queries.jobs.insert_many(conn, pipeline, project["id"], [{"name": "j", "stage": "test", "stage_idx": 0, "script": ["true"]}])
        return (await queries.jobs.for_pipeline(conn, pipeline))[0]["id"]
