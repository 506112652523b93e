"""LogIndex over an in-memory log: line numbers, line starts, aligned windows, whole-log search."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from conveyor.server.viewer import index as index_module
from conveyor.server.viewer.index import STEP, LogIndex, strip

pytestmark = pytest.mark.unit


class Bytes:
    """A reader of one growing log, in uneven pieces (what TraceReader.stream yields)."""

    def __init__(self, data: bytes, piece: int = 7777) -> None:
        self.data, self.piece = data, piece

    async def size(self, job_id: int) -> int:
        return len(self.data)

    async def stream(self, job_id: int, start: int = 0) -> AsyncIterator[bytes]:
        for at in range(start, len(self.data), self.piece):
            yield self.data[at : at + self.piece]


def numbered(count: int) -> bytes:
    return b"".join(b"line %06d \x1b[31mred\x1b[0m\n" % n for n in range(1, count + 1))


async def test_line_numbers_and_line_starts_across_checkpoints() -> None:
    data = numbered(20000)
    index = LogIndex(Bytes(data))  # type: ignore[arg-type]
    built = await index.index(1)
    assert built.size == len(data) and built.total_lines == 20000 and len(built.offsets) > len(data) // STEP
    for line in (1, 2, 4097, 12345, 20000):
        offset = await index.offset_of(1, line)
        assert data[offset:].startswith(b"line %06d " % line)
        assert await index.line_at(1, offset) == line
        assert await index.line_at(1, offset + 5) == line
    assert await index.offset_of(1, 20001) == len(data)


async def test_window_is_whole_numbered_lines_and_keeps_an_unfinished_tail() -> None:
    data = numbered(5000) + b"half a line"
    index = LogIndex(Bytes(data))  # type: ignore[arg-type]
    window = await index.window(1, 1000, 3000)
    assert window.data.startswith(b"line ") and window.data.endswith(b"\n")
    assert window.data.split(b"\n")[0].startswith(b"line %06d" % window.first_line)
    assert data[window.start : window.end] == window.data
    tail = await index.window(1, len(data) - 100, len(data))
    assert tail.end == len(data) and tail.data.endswith(b"half a line")
    assert tail.total_lines == 5001
    for log in (data, numbered(5000)):  # a tail is numbered back from the last line: as line_at says
        index = LogIndex(Bytes(log))  # type: ignore[arg-type]
        for want in (1, 20, 100, 4096):
            tail = await index.tail(1, want)
            assert tail.first_line == await index.line_at(1, tail.start), (len(log), want)


async def test_growing_log_extends_its_index() -> None:
    log = Bytes(numbered(100))
    index = LogIndex(log)  # type: ignore[arg-type]
    assert (await index.index(1)).total_lines == 100
    log.data += b"more\nand more\n"
    assert (await index.index(1)).total_lines == 102
    assert await index.line_at(1, len(log.data) - 3) == 102


async def test_search_finds_every_line_case_insensitively_without_escapes() -> None:
    data = numbered(30000).replace(b"line 000012 ", b"line 000012 NEEDLE-7 ").replace(b"line 029000 ", b"\x1b[1mNeedle\x1b[0m-7 ")
    index = LogIndex(Bytes(data, piece=65536))  # type: ignore[arg-type]
    hits, total = await index.search(1, "needle-7")
    assert total == 2 and [h.line for h in hits] == [12, 29000]
    assert hits[1].preview.startswith("Needle-7 ")
    assert (await index.search(1, "red"))[1] == 30000
    assert (await index.search(1, "31m"))[1] == 0  # escape sequences are not text


def test_strip_keeps_text_and_line_feeds() -> None:
    assert strip(b"\x1b[1;31mred\x1b[0m\r\n\x1b]8;;https://x\x1b\\link\x1b]8;;\x07\x00") == b"red\r\nlink"


async def test_tail_of_a_big_unindexed_log_comes_first_then_numbered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "PROVISIONAL_FROM", 100_000)
    data = numbered(20000)
    index = LogIndex(Bytes(data))  # type: ignore[arg-type]
    first = await index.tail(1, 1000)
    assert first.first_line == 0 and first.end == len(data) and data.endswith(first.data)
    assert first.data.startswith(b"line ") and data[first.start - 1 : first.start] == b"\n"
    again = await index.tail(1, 1000)  # waits for the index the first call started
    assert again.first_line == 20000 - again.data.count(b"\n") + 1 and again.total_lines == 20000
    small = LogIndex(Bytes(numbered(100)))  # type: ignore[arg-type]
    assert (await small.tail(1, 1000)).first_line > 0  # under the threshold: numbered at once


async def test_a_range_inside_one_long_line_returns_that_part_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"first\n" + b"\rprogress %03d%%" * 20000  # one line of 300 kB, unfinished
    index = LogIndex(Bytes(data))  # type: ignore[arg-type]
    tail = await index.window(1, len(data) - 1000, len(data))
    assert tail.data == data[-1000:] and tail.first_line == 2
    monkeypatch.setattr(index_module, "PROVISIONAL_FROM", 100_000)
    fresh = await LogIndex(Bytes(data)).tail(1, 1000)  # type: ignore[arg-type]
    assert fresh.data == data[-1000:] and fresh.first_line == 0


async def test_error_lines_over_the_whole_log() -> None:
    data = (numbered(30000).replace(b"line 000007 ", b"line 000007 \x1b[31mERROR:\x1b[0m no such file ")
            .replace(b"line 020000 ", b"line 020000 Traceback (most recent call last) ")
            .replace(b"line 025000 ", b"line 025000 terrorist errorless ")  # not the words
            .replace(b"line 029999 ", b"line 029999 Job failed: exit code 1 "))
    hits, total = await LogIndex(Bytes(data, piece=65536)).errors(1)  # type: ignore[arg-type]
    assert total == 3 and [h.line for h in hits] == [7, 20000, 29999]
    assert hits[0].preview.startswith("line 000007 ERROR: no such file")


async def test_a_big_unindexed_log_is_counted_when_asked_again_not_while_the_page_paints(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    monkeypatch.setattr(index_module, "PROVISIONAL_FROM", 100_000)
    data = numbered(20000)
    reader = Bytes(data)
    streamed: list[int] = []
    stream = reader.stream

    def counting(job_id: int, start: int = 0) -> AsyncIterator[bytes]:
        streamed.append(start)
        return stream(job_id, start)

    reader.stream = counting  # type: ignore[method-assign]
    index = LogIndex(reader)  # type: ignore[arg-type]
    assert (await index.tail(1, 1000)).first_line == 0
    await asyncio.sleep(0.5)  # the page paints: no pass over the log meanwhile (it read only the tail)
    assert streamed == [len(data) - 1001]
    again = await index.tail(1, 1000)  # the page asks again: now it is counted, once
    assert again.total_lines == 20000 and streamed.count(0) == 1  # one pass from the start
    assert (await index.tail(1, 1000)).total_lines == 20000 and streamed.count(0) == 1


async def test_tails_never_asked_again_do_not_pile_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "PROVISIONAL_FROM", 100_000)
    index = LogIndex(Bytes(numbered(20000)), max_logs=2)  # type: ignore[arg-type]
    for job in range(1, 30):
        assert (await index.tail(job, 1000)).first_line == 0
    assert len(index._locks) <= 4 * 2 + 1
    assert (await index.tail(29, 1000)).total_lines == 20000  # the latest one is still counted when asked
