"""Per-line timestamps, gitlab-runner's ``FF_TIMESTAMPS`` format (runner-api.md 10.4).

Every line starts with a 32-byte header: ``2026-08-22T10:00:01.000500Z 01O `` = UTC time with
microseconds, a space, the stream number in two hex digits (``00`` runner messages, ``01`` the
job's output), the stream type (``O``) and the append flag: a space for a new line, ``+`` for the
continuation of the previous one. A write that holds ``\\r`` but no ``\\n`` (section markers,
progress bars) becomes one entry ended with an added ``\\n`` and the next line continues it; a
line longer than 8 KiB is split the same way.

Sits after the masker, so headers never split a secret, and before the size limit, so the limit
counts what is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from conveyor.runner.trace.base import Sink

RUNNER_STREAM = 0
OUTPUT_STREAM = 1
MAX_LINE = 8 * 1024


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Timestamper:
    """Sink wrapper adding the header at the start of every line."""

    def __init__(self, sink: Sink, clock: Callable[[], str] = utc_now) -> None:
        self._sink = sink
        self._clock = clock
        self.stream = RUNNER_STREAM
        self._line_start = True
        self._continues = False
        self._line_length = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        *lines, tail = data.split(b"\n")
        out = bytearray()
        for line in lines:
            out += self._line(line + b"\n")
        if tail:
            out += self._line(tail)
            if b"\r" in tail and not self._line_start:  # one entry per \r write, as GitLab does
                out += b"\n"
                self._line_start, self._continues = True, True
        self._sink.write(bytes(out))

    def _line(self, piece: bytes) -> bytes:
        out = bytearray()
        while piece:
            if self._line_start:
                flag = b"+" if self._continues else b" "
                out += f"{self._clock()} {self.stream:02x}O".encode() + flag
                self._line_start, self._line_length = False, 0
            room = MAX_LINE - self._line_length
            chunk, piece = piece[:room], piece[room:]
            out += chunk
            self._line_length += len(chunk)
            if chunk.endswith(b"\n"):
                self._line_start, self._continues = True, False
            elif self._line_length >= MAX_LINE:
                out += b"\n"
                self._line_start, self._continues = True, True
        return bytes(out)

    def flush(self) -> None:
        self._sink.flush()
