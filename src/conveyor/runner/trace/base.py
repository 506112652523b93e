"""The Sink interface every stage of the trace pipeline implements.

Writers are chained by wrapping: ``Utf8Sanitizer(Masker(OutputLimit(TraceSpool)))``. Each stage
may hold bytes back (an unfinished UTF-8 character, a possible secret prefix) until more data
arrives or ``flush`` is called. Writes are synchronous and must not block on the network.
"""

from __future__ import annotations

from typing import Protocol


class Sink(Protocol):
    def write(self, data: bytes) -> None:
        """Accept ``data``; may keep a tail back until more data or ``flush``."""

    def flush(self) -> None:
        """Pass every held-back byte on, then flush the wrapped sink."""
