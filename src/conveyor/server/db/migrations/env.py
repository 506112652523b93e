"""Alembic environment: migrations always run on a connection handed in by ``migrate.upgrade``."""

from alembic import context

from conveyor.server.db.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through conveyor.server.db.migrate.upgrade()")

context.configure(connection=connection, target_metadata=metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
