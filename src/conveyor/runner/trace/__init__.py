"""The job log pipeline: sanitise, mask and limit output, spool it locally, stream it out.

Owns everything between an executor's output bytes and ``PATCH jobs/:id/trace``. Imports the
standard library, structlog and ``conveyor.protocol``; the sender also uses the runner's HTTP client
and the session the runner's settings and masked-variable list.
"""

from conveyor.runner.trace import ansi
from conveyor.runner.trace.base import Sink
from conveyor.runner.trace.limit import OutputLimit, Utf8Sanitizer, limit_notice
from conveyor.runner.trace.masker import MASK, Masker, token_prefixes
from conveyor.runner.trace.sender import FinalOutcome, SenderTiming, TraceSender
from conveyor.runner.trace.session import TraceSession
from conveyor.runner.trace.spool import TraceSpool
from conveyor.runner.trace.timestamps import Timestamper

__all__ = [
    "MASK",
    "FinalOutcome",
    "Masker",
    "OutputLimit",
    "SenderTiming",
    "Sink",
    "TraceSender",
    "TraceSession",
    "TraceSpool",
    "Timestamper",
    "Utf8Sanitizer",
    "ansi",
    "limit_notice",
    "token_prefixes",
]
