"""Trace filters that do not mask: UTF-8 sanitising and the output size limit.

Both follow gitlab-runner ``helpers/trace/buffer.go``: invalid UTF-8 becomes U+FFFD before it is
buffered, and once ``limit`` bytes were written the trace is cut at a character boundary, a
notice is appended, and every later byte is dropped (runner-api.md section 5.5).
"""

from __future__ import annotations

import codecs

from conveyor.runner.trace.base import Sink

DEFAULT_OUTPUT_LIMIT = 4 * 1024 * 1024


def limit_notice(limit: int) -> bytes:
    """GitLab's truncation notice, in bold yellow."""
    return (
        f"\n\x1b[33;1mJob's log exceeded limit of {limit} bytes.\n"
        "Job execution will continue but no more output will be collected.\x1b[0;m\n"
    ).encode()


def utf8_boundary(data: bytes, cut: int) -> int:
    """The largest offset <= ``cut`` that does not split a UTF-8 character of ``data``."""
    while 0 < cut < len(data) and data[cut] & 0xC0 == 0x80:
        cut -= 1
    return cut


class OutputLimit:
    """Passes at most ``limit`` bytes on, then the notice once, then nothing."""

    def __init__(self, sink: Sink, limit: int = DEFAULT_OUTPUT_LIMIT) -> None:
        self._sink = sink
        self._limit = limit
        self._written = 0
        self.truncated = False

    def write(self, data: bytes) -> None:
        if self.truncated or not data:
            return
        room = self._limit - self._written
        if len(data) <= room:
            self._sink.write(data)
            self._written += len(data)
            return
        head = data[: utf8_boundary(data, room)]
        self._sink.write(head + limit_notice(self._limit))
        self._written += len(head)
        self.truncated = True

    def flush(self) -> None:
        self._sink.flush()


class Utf8Sanitizer:
    """Replaces invalid UTF-8 with U+FFFD; holds an unfinished character until the next write."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def write(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        if text:
            self._sink.write(text.encode("utf-8"))

    def flush(self) -> None:
        text = self._decoder.decode(b"", final=True)
        if text:
            self._sink.write(text.encode("utf-8"))
        self._sink.flush()
