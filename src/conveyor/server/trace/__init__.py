"""Job logs while jobs run: the ``TraceStore`` (offset-checked appends), the reader that stitches
live chunks and archived objects by byte offset, and Redis key names.

May import ``server.db``, ``server.storage`` and ``conveyor.protocol``.
"""

from conveyor.server.trace.base import TraceStore
from conveyor.server.trace.postgres import PostgresTraceStore
from conveyor.server.trace.reader import TraceReader

__all__ = ["PostgresTraceStore", "TraceReader", "TraceStore"]
