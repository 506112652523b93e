"""Sealing finished jobs' logs: live chunks -> one verified object in the object store.

May import ``server.db``, ``server.storage``, ``server.trace`` and ``conveyor.protocol``.
"""

from conveyor.server.archive.traces import TraceArchiver

__all__ = ["TraceArchiver"]
