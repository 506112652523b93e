"""All SQL: the schema (``tables.py``), one query module per entity (``queries/``), named SQL
blocks (``sql/``), the engine (``engine.py``) with its statement observer (``observer.py``) and
sqlcommenter query comments (``comments.py``), stale-tolerant reads from replicas
(``replicas.py``), the checks of ``conveyor doctor postgres`` (``doctor.py``), LISTEN connections
of their own (``notifications.py``) and Alembic migrations.

May import SQLAlchemy, asyncpg, alembic and ``conveyor.protocol``; nothing else of the server
imports the database driver directly. asyncpg errors are translated here.
"""

from conveyor.server.db import comments, queries, tables
from conveyor.server.db.comments import Commenter
from conveyor.server.db.engine import ConnectionBounds, SavepointDetected, StatementObserver, create_engine
from conveyor.server.db.migrate import upgrade
from conveyor.server.db.transactions import single_statements, transaction

__all__ = ["Commenter", "ConnectionBounds", "SavepointDetected", "StatementObserver", "comments", "create_engine", "queries", "single_statements", "tables", "transaction", "upgrade"]
