"""Session-wide test setup: clean environment, real PostgreSQL and Redis, the SAVEPOINT guard."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Iterator

import pytest

pytest_plugins = ["pytester", "tests.plugins.savepoint_guard", "tests.plugins.replicas", "tests.plugins.live", "tests.plugins.podman", "tests.plugins.s3",
                  "tests.plugins.middlebox", "tests.plugins.workers"]

for _name in [n for n in os.environ if n.startswith("CONVEYOR_")]:
    del os.environ[_name]  # tests configure Conveyor explicitly, never from the caller's shell

TEMPLATE = "conveyor_template"
_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator["services.Postgres"]:
    from tests.plugins import services

    pg = services.start_postgres()
    yield pg
    pg.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator["services.RedisServer"]:
    from tests.plugins import services

    server = services.start_redis()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def template_db(postgres) -> str:  # noqa: ANN001
    """A database migrated once; each test gets a copy (CREATE DATABASE ... TEMPLATE)."""
    from conveyor.server.db import StatementObserver, create_engine, upgrade

    postgres.psql(f"CREATE DATABASE {TEMPLATE}")

    async def migrate() -> None:
        engine = create_engine(postgres.url(TEMPLATE), StatementObserver("raise"))
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(migrate())
    return TEMPLATE


@pytest.fixture
def database_url(postgres, template_db) -> Iterator[str]:  # noqa: ANN001
    name = f"test_{os.getpid()}_{next(_counter)}"
    postgres.psql(f"CREATE DATABASE {name} TEMPLATE {template_db}")
    yield postgres.url(name)
    postgres.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def redis_url(redis_server) -> str:  # noqa: ANN001
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url
