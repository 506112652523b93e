"""SSE framing of job logs: UTF-8 boundaries, binary safety, exact offsets."""

from __future__ import annotations

import json

import pytest

from conveyor.server.viewer import sse

pytestmark = pytest.mark.unit

ROCKET = "\U0001f680".encode()  # 4 bytes
SNOW = "\u2603".encode()  # 3 bytes


@pytest.mark.parametrize(
    ("data", "head", "tail"),
    [
        (b"plain", b"plain", b""),
        (b"", b"", b""),
        (b"a" + ROCKET, b"a" + ROCKET, b""),
        (b"a" + ROCKET[:1], b"a", ROCKET[:1]),
        (b"a" + ROCKET[:2], b"a", ROCKET[:2]),
        (b"a" + ROCKET[:3], b"a", ROCKET[:3]),
        (SNOW[:2], b"", SNOW[:2]),
        (b"x" + "\u00e9".encode()[:1], b"x", "\u00e9".encode()[:1]),
        (b"bad \xff", b"bad \xff", b""),  # not a lead byte: nothing to wait for
        (b"\x80\x80\x80\x80", b"\x80\x80\x80\x80", b""),
    ],
)
def test_split_holds_back_only_an_incomplete_last_character(data: bytes, head: bytes, tail: bytes) -> None:
    assert sse.split_utf8(data) == (head, tail)


@pytest.mark.parametrize("data", [b"line\r\n", b"a\rb\nc", "snow \u2603".encode(), b"\xff\xfe\x00", b"\x00\x1b[31mred"])
def test_log_event_round_trips_bytes_and_carries_the_end_offset(data: bytes) -> None:
    frame = sse.log_event(data, 100 + len(data)).decode()
    lines = frame.split("\n")
    assert lines[:2] == [f"id: {100 + len(data)}", "event: log"] and frame.endswith("\n\n")
    assert len([line for line in lines if line.startswith("data: ")]) == 1  # CR/LF never leak into framing
    assert "\r" not in frame
    body = json.loads(lines[2][len("data: "):])
    assert sse.decode(body) == data
    assert ("text" in body) == (data != b"\xff\xfe\x00")


def test_end_event_and_retry_field() -> None:
    assert sse.end_event("failed", 42) == b'id: 42\nevent: end\ndata: {"status":"failed","size":42}\n\n'
    assert sse.retry_field(3) == b"retry: 3000\n\n"
    assert sse.KEEPALIVE.startswith(b":")
