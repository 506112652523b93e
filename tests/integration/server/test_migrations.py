"""Running every migration gives exactly the schema declared in tables.py."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from conveyor.server.db import StatementObserver, create_engine, upgrade
from conveyor.server.db.tables import metadata

pytestmark = pytest.mark.integration


async def test_migrations_match_tables(postgres) -> None:  # noqa: ANN001
    postgres.psql("DROP DATABASE IF EXISTS migration_check")
    postgres.psql("CREATE DATABASE migration_check")
    engine = create_engine(postgres.url("migration_check"), StatementObserver("raise"))
    try:
        await upgrade(engine)
        await upgrade(engine)  # idempotent: a second server start migrates nothing
        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), metadata))
    finally:
        await engine.dispose()
    assert diff == []
