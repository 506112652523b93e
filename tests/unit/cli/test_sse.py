"""The CLI's SSE parser (WHATWG rules the live tail relies on)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from conveyor.cli import sse

pytestmark = pytest.mark.unit


async def _lines(text: str) -> AsyncIterator[str]:
    for line in text.split("\n"):
        yield line


async def _parse(text: str) -> list[sse.Event | None]:
    return [event async for event in sse.parse(_lines(text))]


async def test_fields_comments_and_multiline_data() -> None:
    text = 'retry: 3000\n\n: keepalive\n\nid: 5\nevent: log\ndata: {"text":"hello"}\n\ndata: a\ndata:b\n\nevent: end\ndata: {}\n\n'
    events = await _parse(text)
    assert events[0] == sse.Event(retry=3000)
    assert events[1] is None
    assert events[2] == sse.Event(event="log", data='{"text":"hello"}', id="5")
    assert events[3] == sse.Event(data="a\nb")
    assert events[4] == sse.Event(event="end", data="{}")
    assert len(events) == 5


async def test_an_unterminated_event_is_not_dispatched() -> None:
    assert await _parse("id: 9\nevent: log\ndata: {}") == []


def test_log_bytes_decodes_text_and_base64() -> None:
    assert sse.log_bytes(sse.Event(event="log", data='{"text":"\\r\\n\\u2603"}')) == "\r\n\u2603".encode()
    assert sse.log_bytes(sse.Event(event="log", data='{"base64":"//4A"}')) == b"\xff\xfe\x00"
