"""Queue ticks across every server process, and targeted wake-ups of held job requests.

A job becoming pending calls ``tick(queued)``: a new random version is stored in Redis and
published on one channel with the new jobs' tags. Each server process runs one subscriber
(``run()``). For every new job it wakes the longest-waiting held requests *whose runner may take
that job* (``WAKE_PER_JOB`` of them), not every held request: with hundreds of idle runners, a
wake-all would send hundreds of claims to the database for each job (a thundering herd).
A tick without job details (cancel, a lost message noticed by the heartbeat) wakes everyone.

The subscriber also re-reads the version every ``heartbeat`` seconds, so a lost pub/sub message
or a dropped subscription delays a wake-up, never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis

from conveyor.server import keys
from conveyor.server.db.queries.jobs import Queued

log = structlog.get_logger(__name__)

WAKE_PER_JOB = 2  # slack: the other process's waiter, or a lost race, may take the job first
MAX_DETAILED = 500  # above this many new jobs a tick just wakes everyone


@dataclass(frozen=True)
class Appetite:
    """What a waiting runner may take (GitLab's matching rules)."""

    tags: frozenset[str]
    run_untagged: bool
    protected_only: bool

    def accepts(self, tags: Sequence[str], protected: bool) -> bool:
        if not tags and not self.run_untagged:
            return False
        if self.protected_only and not protected:
            return False
        return set(tags) <= self.tags


ANY = Appetite(frozenset(), True, False)


class _Waiter:
    __slots__ = ("appetite", "future")

    def __init__(self, appetite: Appetite, future: asyncio.Future[str | None]) -> None:
        self.appetite = appetite
        self.future = future


class QueueNotifier:
    def __init__(self, redis: Redis, *, heartbeat: float = 5.0) -> None:
        self._redis = redis
        self._heartbeat = heartbeat
        self._version: str | None = None
        self._waiters: list[_Waiter] = []  # oldest first
        self._closing = False

    async def version(self) -> str:
        """The current version (from Redis; created on first use)."""
        value = await self._redis.get(keys.queue_version())
        if value is None:
            await self._redis.set(keys.queue_version(), secrets.token_hex(16), nx=True)
            value = await self._redis.get(keys.queue_version())
        return value.decode() if isinstance(value, bytes) else str(value)

    async def tick(self, queued: Sequence[Queued] | None = None) -> None:
        """Jobs became pending (``queued``; None when unknown): store, publish, wake locally."""
        version = secrets.token_hex(16)
        jobs = None if queued is None or len(queued) > MAX_DETAILED else [[list(q.tags), q.protected] for q in queued]
        await self._redis.set(keys.queue_version(), version)
        await self._redis.publish(keys.queue_channel(), json.dumps({"version": version, "jobs": jobs}))
        self._observe(version, jobs)

    async def wait_for_change(self, seen: str, timeout: float, appetite: Appetite = ANY) -> str | None:
        """Wait until woken for a job ``appetite`` accepts (or the version moved before we got
        here); the version then, or None after ``timeout`` or when closing."""
        if self._closing:
            return None
        if self._version is not None and self._version != seen:
            return self._version
        waiter = _Waiter(appetite, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter.future, timeout)
        except TimeoutError:
            return None
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    async def close(self) -> None:
        """The server is stopping: release every held request now (they answer 204)."""
        self._closing = True
        self._wake(lambda _waiter: True, None, limit=None)

    async def run(self) -> None:
        """Follow the channel (and poll the key as a heartbeat) until cancelled."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis went away: keep polling and resubscribe
                log.warning("queue_subscription_lost", exc_info=True)
                await asyncio.sleep(1.0)

    async def _follow(self) -> None:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(keys.queue_channel())
            self._observe(await self.version(), None)
            while True:
                message = await pubsub.get_message(timeout=self._heartbeat)
                if message and message.get("type") == "message":
                    data = json.loads(message["data"])
                    self._observe(data["version"], data.get("jobs"))
                else:
                    self._observe(await self.version(), None)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    def _observe(self, version: str, jobs: list | None) -> None:
        if version == self._version:
            return
        self._version = version
        if jobs is None:
            self._wake(lambda _waiter: True, version, limit=None)
            return
        for tags, protected in jobs:
            self._wake(lambda waiter: waiter.appetite.accepts(tags, protected), version, limit=WAKE_PER_JOB)

    def _wake(self, wanted, version: str | None, *, limit: int | None) -> None:  # noqa: ANN001
        woken = 0
        for waiter in list(self._waiters):
            if limit is not None and woken >= limit:
                return
            if not waiter.future.done() and wanted(waiter):
                waiter.future.set_result(version)
                self._waiters.remove(waiter)
                woken += 1
