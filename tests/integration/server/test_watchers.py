"""The "being watched" flag on real Redis: a process asks Redis at most once per ``SEEN_FOR`` per
job, a viewer on the same process counts at once, one on another process within ``SEEN_FOR``."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from conveyor.server.viewer import watch
from conveyor.server.viewer.watch import Watchers

from tests.integration.server.trace_support import redis  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration


async def _exists_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_exists", {}).get("calls", 0))


async def test_the_flag_is_read_once_per_interval_and_a_local_viewer_counts_at_once(redis) -> None:  # noqa: ANN001
    job = 990_001
    await redis.delete(f"conveyor:trace:{job}:watched")
    here = Watchers(redis, interval=60, watched_interval=3)
    await redis.config_resetstat()
    assert [await here.update_interval(job) for _ in range(5)] == [60] * 5
    assert await _exists_calls(redis) == 1  # one PATCH in five asked Redis
    await here.mark(job)  # a viewer attached on this process
    assert await here.update_interval(job) == 3
    assert await _exists_calls(redis) == 1


async def test_a_viewer_on_another_process_counts_within_the_interval(redis, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(watch, "SEEN_FOR", 0.2)
    job = 990_002
    await redis.delete(f"conveyor:trace:{job}:watched")
    here, there = Watchers(redis, interval=60, watched_interval=3), Watchers(redis, interval=60, watched_interval=3)
    assert await here.update_interval(job) == 60
    await there.mark(job)
    assert await here.update_interval(job) == 60  # still the reading of 0.2 s ago
    await asyncio.sleep(0.25)
    assert await here.update_interval(job) == 3


async def test_readings_the_append_script_reports_are_pruned_too(redis, monkeypatch) -> None:  # noqa: ANN001
    """Regression: ``saw`` (every PATCH) stored readings that only a Redis lookup pruned, and its
    fresh readings meant no lookup ever ran: one entry per job ever PATCHed, forever."""
    monkeypatch.setattr(watch, "REMEMBERED", 10)
    monkeypatch.setattr(watch, "SEEN_FOR", 0.05)
    watchers = Watchers(redis, interval=60, watched_interval=3)
    for job in range(10):
        watchers.saw(job, False)
    await asyncio.sleep(0.1)  # those readings are stale now
    for job in range(100, 112):
        watchers.saw(job, True)
    assert not any(job in watchers._seen for job in range(10))  # the stale readings are gone
    assert await watchers.update_interval(111) == 3  # the fresh ones still answer
