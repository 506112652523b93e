"""Random access into a job's log by line: checkpoints, aligned byte ranges, whole-log search.

One pass over a log records a checkpoint every 64 KiB: (byte offset, line feeds before it). With
them, "which line holds offset N" and "where does line N start" read at most 64 KiB. The index of
each recently viewed log stays in memory per process (LRU), and a live log's index is extended
from where it stopped when the log grows, so a running job never costs a second full pass.

Line numbers are 1-based logical lines of the raw log (blank lines count, as ``sed -n``).
"""

from __future__ import annotations

import asyncio
import bisect
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field

from conveyor.server.trace import TraceReader

STEP = 64 * 1024
MAX_RANGE = 1024 * 1024  # the most one range request returns
MAX_LOGS = 16  # indexes kept per process
MAX_HITS = 1000
PROVISIONAL_FROM = 8 * 1024 * 1024  # a log this big, never indexed here: its tail comes first, unnumbered
PREVIEW = 200
# CSI, OSC (BEL or ST terminated), other ESC sequences, and the controls a terminal would not print
_ESCAPES = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)?|\x1b[PX^_][^\x1b\n]*(?:\x1b\\)?|\x1b.|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# what "next error" stops at (matched on lowered printable text): the words compilers, shells,
# test runners and gitlab-runner print when something failed
ERRORS = re.compile(rb"\b(?:error|errors|fatal|failed|failure|exception|traceback|panic)\b")


def strip(data: bytes) -> bytes:
    """The printable text of log bytes: escape sequences and controls removed, line feeds kept."""
    return _ESCAPES.sub(b"", data)


@dataclass
class LineIndex:
    offsets: list[int] = field(default_factory=lambda: [0])  # checkpoint byte offsets
    lines: list[int] = field(default_factory=lambda: [0])  # line feeds before each checkpoint
    size: int = 0  # bytes indexed
    feeds: int = 0  # line feeds in those bytes
    ends_with_feed: bool = True

    def add(self, piece: bytes) -> None:
        for at in range(0, len(piece), STEP):
            part = piece[at : at + STEP]
            if self.size - self.offsets[-1] >= STEP:
                self.offsets.append(self.size)
                self.lines.append(self.feeds)
            self.size += len(part)
            self.feeds += part.count(b"\n")
            self.ends_with_feed = part.endswith(b"\n")

    @property
    def total_lines(self) -> int:
        """Lines a viewer shows: a last line without its line feed counts too."""
        return self.feeds + (0 if self.ends_with_feed else 1)


@dataclass(frozen=True)
class Window:
    data: bytes
    start: int  # byte offset of data[0], a line start
    end: int  # byte offset just past data
    first_line: int  # number of the line at ``start``
    size: int  # the log's size when read
    total_lines: int


@dataclass(frozen=True)
class Hit:
    line: int
    preview: str


class LogIndex:
    """Line checkpoints of logs, kept per process; reads go through ``TraceReader``."""

    def __init__(self, reader: TraceReader, max_logs: int = MAX_LOGS) -> None:
        self._reader = reader
        self._max = max_logs
        self._indexes: OrderedDict[int, LineIndex] = OrderedDict()
        self._locks: dict[int, asyncio.Lock] = {}

    async def index(self, job_id: int) -> LineIndex:
        """The job's index, extended to the log's current end."""
        lock = self._locks.setdefault(job_id, asyncio.Lock())
        async with lock:
            index = self._indexes.pop(job_id, None) or LineIndex()
            self._indexes[job_id] = index
            while len(self._indexes) > self._max:
                old, _ = self._indexes.popitem(last=False)
                self._locks.pop(old, None)
            async with aclosing(self._reader.stream(job_id, index.size)) as pieces:
                async for piece in pieces:
                    index.add(piece)
            return index

    async def tail(self, job_id: int, want: int) -> Window:
        """The log's last ``want`` bytes from a line start.

        A big log this process has never indexed answers at once with ``first_line`` 0 (unknown);
        the index is built by the next request that needs it (the page asks again once it has
        painted this tail: a pass over 100 MiB takes a CPU for a second, which must not be the
        one the page paints with), and requests meanwhile wait for that pass.
        """
        if job_id not in self._locks:  # neither indexed nor being indexed
            size = await self._reader.size(job_id)
            if size >= PROVISIONAL_FROM and job_id not in self._locks:
                self._forget_unasked()
                self._locks[job_id] = asyncio.Lock()  # from now on: indexed on demand, once
                start = max(size - want, 0)
                data = await self.read(job_id, start - 1, size)
                data, start = _line_start(data, start)
                return Window(data, start, start + len(data), 0, size, 0)
        index = await self.index(job_id)
        return await self.window(job_id, max(index.size - want, 0), index.size, index)

    def _forget_unasked(self) -> None:
        """Logs whose tail was served unnumbered and never asked again (a page without scripts)
        leave a lock each: past 4x the LRU's size, those are dropped (their next tail is
        unnumbered again)."""
        if len(self._locks) > 4 * self._max:
            for job in [j for j, lock in self._locks.items() if j not in self._indexes and not lock.locked()]:
                del self._locks[job]

    async def read(self, job_id: int, start: int, end: int) -> bytes:
        """Bytes ``start`` up to ``end`` (or the log's end, if sooner)."""
        out, have = [], 0
        async with aclosing(self._reader.stream(job_id, start)) as pieces:
            async for piece in pieces:
                out.append(piece[: end - start - have])
                have += len(out[-1])
                if have >= end - start:
                    break
        return b"".join(out)

    async def line_at(self, job_id: int, offset: int, index: LineIndex | None = None) -> int:
        """Number of the line holding byte ``offset``."""
        index = index or await self.index(job_id)
        at = bisect.bisect_right(index.offsets, offset) - 1
        before = await self.read(job_id, index.offsets[at], offset)
        return index.lines[at] + before.count(b"\n") + 1

    async def offset_of(self, job_id: int, line: int, index: LineIndex | None = None) -> int:
        """Byte offset where line ``line`` starts (the log's end when it has fewer lines)."""
        index = index or await self.index(job_id)
        want = max(line, 1) - 1  # line feeds before the line
        if want == 0:
            return 0
        at = max(bisect.bisect_left(index.lines, want) - 1, 0)
        position, feeds = index.offsets[at], index.lines[at]
        async with aclosing(self._reader.stream(job_id, position)) as pieces:
            async for piece in pieces:
                found = -1
                while feeds < want:
                    found = piece.find(b"\n", found + 1)
                    if found < 0:
                        break
                    feeds += 1
                if feeds == want and found >= 0:
                    return position + found + 1
                position += len(piece)
        return index.size

    async def window(self, job_id: int, start: int, end: int, index: LineIndex | None = None) -> Window:
        """The whole lines of bytes ``start``..``end`` (at most ``MAX_RANGE``), numbered.

        A range that starts inside a line begins at the next line; one that ends inside a line
        stops before it, unless that is the log's last, unfinished line.
        """
        index = index or await self.index(job_id)
        start, end = max(0, min(start, index.size)), max(0, min(end, index.size, start + MAX_RANGE))
        data = await self.read(job_id, max(start - 1, 0), end)
        if start > 0:
            data, start = _line_start(data, start)
        if end < index.size:
            cut = data.rfind(b"\n")
            if cut >= 0:  # else one line longer than the range: return it cut
                data = data[: cut + 1]
        if start >= index.size:
            first = index.total_lines + 1
        elif start + len(data) == index.size:  # up to the end (a tail): count back from the last line
            first = index.total_lines - data.count(b"\n") + (1 if data.endswith(b"\n") else 0)
        else:
            first = await self.line_at(job_id, start, index)
        return Window(data, start, start + len(data), first, index.size, index.total_lines)

    async def search(self, job_id: int, query: str, limit: int = MAX_HITS) -> tuple[list[Hit], int]:
        """Lines whose printable text contains ``query`` (case-insensitive): (first hits, total)."""
        needle = query.lower().encode()
        return await self._scan(job_id, lambda lowered, position: lowered.find(needle, position), limit)

    async def errors(self, job_id: int, limit: int = MAX_HITS) -> tuple[list[Hit], int]:
        """Lines that look like errors (``ERRORS``, printable text, case-insensitive)."""
        def find(lowered: bytes, position: int) -> int:
            match = ERRORS.search(lowered, position)
            return match.start() if match else -1

        return await self._scan(job_id, find, limit)

    async def _scan(self, job_id: int, find: Callable[[bytes, int], int], limit: int) -> tuple[list[Hit], int]:
        """Lines where ``find(lowered text, from)`` finds something: (first ``limit`` hits, total)."""
        hits: list[Hit] = []
        total, line, carry = 0, 1, b""
        async with aclosing(self._blocks(job_id)) as blocks:
            async for block in blocks:
                text = strip(carry + block)
                cut = text.rfind(b"\n") + 1
                text, carry = text[:cut], b""  # stripped text ends at a line feed: no carry needed
                lowered, position, counted = text.lower(), 0, 0
                while (found := find(lowered, position)) >= 0:
                    line += lowered.count(b"\n", counted, found)
                    counted = found
                    start, stop = lowered.rfind(b"\n", 0, found) + 1, lowered.find(b"\n", found)
                    total += 1
                    if len(hits) < limit:
                        preview = text[start : min(stop, start + PREVIEW)].split(b"\r")[-1]
                        hits.append(Hit(line, preview.decode("utf-8", "replace")))
                    position = stop + 1  # one hit per line
                line += lowered.count(b"\n", counted)
        return hits, total

    async def _blocks(self, job_id: int) -> AsyncIterator[bytes]:
        """The log in blocks that each end with a line feed (the last one may not)."""
        carry = b""
        async with aclosing(self._reader.stream(job_id, 0)) as pieces:
            async for piece in pieces:
                data = carry + piece
                cut = data.rfind(b"\n") + 1
                if cut:
                    yield data[:cut]
                carry = data[cut:]
        if carry:
            yield carry + b"\n"


def _line_start(data: bytes, start: int) -> tuple[bytes, int]:
    """``data`` read from ``start - 1``: from the first line start on, or from ``start`` when the
    range lies inside one long line (a progress bar that never printed a line feed)."""
    cut = data.find(b"\n")
    if cut < 0:
        return data[1:], start
    return data[cut + 1 :], start + cut
