"""Live tail of job logs: trace change events over one Redis pub/sub subscription per process,
the "being watched" flag behind ``X-GitLab-Trace-Update-Interval``, and the Server-Sent Events
stream that resumes by byte offset, and the line index for random access into a log.

May import ``server.trace`` (``TraceReader``, the one read path), ``server.db``, ``server.keys``
and ``conveyor.protocol``; never ``server.api`` or ``server.queue``.
"""

from conveyor.server.viewer import sse
from conveyor.server.viewer.events import Change, TraceEvents
from conveyor.server.viewer.index import LogIndex
from conveyor.server.viewer.tail import FINISHED, LiveTail
from conveyor.server.viewer.watch import Watchers

__all__ = ["FINISHED", "Change", "LiveTail", "LogIndex", "TraceEvents", "Watchers", "sse"]
