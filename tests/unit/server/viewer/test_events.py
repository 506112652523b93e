"""TraceEvents' local fan-out (no Redis needed: ``deliver`` is what the subscription calls)."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from conveyor.server.viewer.events import Change, TraceEvents

pytestmark = pytest.mark.unit


def _events() -> TraceEvents:
    return TraceEvents(None)  # type: ignore[arg-type]  # publishing and run() are not used here


async def test_a_waiter_wakes_on_a_larger_size_only() -> None:
    events = _events()
    waiter = asyncio.create_task(events.wait(7, 100, timeout=5))
    await asyncio.sleep(0)
    events.deliver(7, Change(size=90))  # older news: keeps waiting
    events.deliver(8, Change(size=500))  # another job
    await asyncio.sleep(0.01)
    assert not waiter.done() and events.waiting() == 1
    events.deliver(7, Change(size=120, data=b"x" * 20))
    change = await waiter
    assert change.size == 120 and change.data == b"x" * 20 and events.waiting() == 0


async def test_news_that_came_before_the_wait_is_not_lost_and_bytes_are_not_kept() -> None:
    events = _events()
    events.deliver(7, Change(size=120, data=b"y" * 20))
    change = await events.wait(7, 100, timeout=5)
    assert change == Change(size=120)  # remembered size, not the bytes
    assert await events.wait(7, 120, timeout=0.01) is None  # nothing newer: times out


async def test_end_resync_and_close_wake_waiters() -> None:
    events = _events()
    ended = asyncio.create_task(events.wait(1, 0, timeout=5))
    other = asyncio.create_task(events.wait(2, 0, timeout=5))
    await asyncio.sleep(0)
    events.deliver(1, Change(end="success"))
    assert (await ended).end == "success"
    events._wake_all(Change(resync=True))
    assert (await other).resync
    closing = asyncio.create_task(events.wait(3, 0, timeout=5))
    await asyncio.sleep(0)
    events.close()
    assert (await closing).closed and (await events.wait(4, 0, timeout=5)).closed


def test_recent_bytes_are_kept_for_followed_jobs_only_and_only_when_contiguous() -> None:
    events = _events()
    events.deliver(5, Change(size=3, data=b"abc"))
    assert events.recent(5, 0) is None  # nobody follows job 5 here: nothing kept
    events.follow(5)
    events.deliver(5, Change(size=6, data=b"def"))
    events.deliver(5, Change(size=9, data=b"ghi"))
    assert events.recent(5, 3) == b"defghi" and events.recent(5, 7) == b"hi" and events.recent(5, 9) == b""
    assert events.recent(5, 2) is None  # before what is kept: read storage
    events.deliver(5, Change(size=50_000))  # a large append travels without its bytes
    assert events.recent(5, 9) is None
    events.deliver(5, Change(size=50_010, data=b"0123456789"))
    assert events.recent(5, 50_000) == b"0123456789"
    events.deliver(5, Change(size=50_010 + 40_000, data=b"z" * 40_000))
    assert events.recent(5, 50_010 + 40_000 - 32 * 1024) == b"z" * (32 * 1024) and events.recent(5, 50_010) is None
    events.unfollow(5)
    assert events.recent(5, 90_000) is None


@pytest.mark.parametrize("data", [b"", b'line "quoted" \\ \n\xff\x00', bytes(range(256)) * 64, b"x" * (16 * 1024 + 1)])
def test_an_announcement_is_the_message_a_publish_sends(data: bytes) -> None:
    """An append's message is formatted by hand (no json.dumps per PATCH), for the append script
    and for a publish alike: it must be the same JSON, bytes inline up to INLINE_LIMIT, that the
    subscription parses."""
    from conveyor.server.viewer import events as module

    announcement = _events().announcement(42, 1000 + len(data), data)
    inline = {"data": base64.b64encode(data).decode("ascii")} if len(data) <= module.INLINE_LIMIT else {}
    assert announcement.message == json.dumps({"job_id": 42, "size": 1000 + len(data), **inline}, separators=(",", ":"))
    parsed = json.loads(announcement.message)
    assert parsed["size"] == 1000 + len(data)
    assert (base64.b64decode(parsed["data"]) == data) if len(data) <= module.INLINE_LIMIT else "data" not in parsed


def test_a_publish_without_the_bytes_carries_only_the_size() -> None:
    from conveyor.server.viewer import events as module

    assert json.loads(module._appended(7, 12, None)) == {"job_id": 7, "size": 12}
