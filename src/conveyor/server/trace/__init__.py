"""Job logs while jobs run: the ``TraceStore`` (offset-checked appends), the reader that stitches
live chunks and archived objects by byte offset. Two stores: ``RedisTraceStore`` (hot chunks in
Redis, sealed into PostgreSQL) and ``PostgresTraceStore`` (every append one transaction).

May import ``server.db``, ``server.storage``, ``server.keys``, ``server.errors`` and
``conveyor.protocol``.
"""

from conveyor.server.trace.base import Announcement, TraceStore
from conveyor.server.trace.postgres import PostgresTraceStore
from conveyor.server.trace.reader import TraceReader
from conveyor.server.trace.redis import RedisTraceStore

__all__ = ["Announcement", "PostgresTraceStore", "RedisTraceStore", "TraceReader", "TraceStore"]
