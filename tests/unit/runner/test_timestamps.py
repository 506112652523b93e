"""Per-line timestamps in gitlab-runner's format (runner-api.md 10.4)."""

from __future__ import annotations

import re

import pytest

from conveyor.runner.trace import ansi
from conveyor.runner.trace.timestamps import MAX_LINE, OUTPUT_STREAM, Timestamper
from tests.unit.runner.test_limit import Collect

pytestmark = pytest.mark.unit
HEADER = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z [0-9a-f]{2}O[ +]")


def stamped(*writes: tuple[int, bytes]) -> list[bytes]:
    sink = Collect()
    stamper = Timestamper(sink, clock=lambda: "2026-08-22T10:00:01.000500Z")
    for stream, data in writes:
        stamper.stream = stream
        stamper.write(data)
    *lines, tail = bytes(sink.data).split(b"\n")
    return [line + b"\n" for line in lines] + ([tail] if tail else [])


def test_every_line_gets_the_32_byte_header() -> None:
    lines = stamped((0, b"Running with conveyor\n"), (OUTPUT_STREAM, b"hel"), (OUTPUT_STREAM, b"lo\nworld\n"))
    assert lines == [
        b"2026-08-22T10:00:01.000500Z 00O Running with conveyor\n",
        b"2026-08-22T10:00:01.000500Z 01O hello\n",
        b"2026-08-22T10:00:01.000500Z 01O world\n",
    ]
    assert all(HEADER.match(line) and len(HEADER.match(line).group(0)) == 32 for line in lines)


def test_a_carriage_return_write_is_one_entry_and_the_next_line_continues_it() -> None:
    marker = ansi.section_start("prepare_executor", now=1787392800).encode()
    lines = stamped((0, marker), (0, ansi.header("Preparing").encode()))
    assert lines[0] == b"2026-08-22T10:00:01.000500Z 00O section_start:1787392800:prepare_executor\r\x1b[0K\n"
    assert lines[1].startswith(b"2026-08-22T10:00:01.000500Z 00O+\x1b[0K\x1b[36;1mPreparing")


def test_long_lines_are_split_into_continuations() -> None:
    lines = stamped((OUTPUT_STREAM, b"x" * (MAX_LINE + 10) + b"\n"))
    assert [line[31:32] for line in lines] == [b" ", b"+"]
    assert b"".join(line[32:] for line in lines).replace(b"\n", b"") == b"x" * (MAX_LINE + 10)
