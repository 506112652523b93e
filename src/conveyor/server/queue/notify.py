"""Queue ticks across every server process: a version in Redis, published when it changes.

A job becoming pending calls ``tick()``: a new random version is stored and published on one
Redis channel. Each server process runs one subscriber (``run()``) that wakes every long-polling
job request it holds. The subscriber also re-reads the version every ``heartbeat`` seconds, so a
lost pub/sub message or a dropped subscription delays a wake-up, never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets

import structlog
from redis.asyncio import Redis

from conveyor.server import keys

log = structlog.get_logger(__name__)


class QueueNotifier:
    def __init__(self, redis: Redis, *, heartbeat: float = 5.0) -> None:
        self._redis = redis
        self._heartbeat = heartbeat
        self._version: str | None = None
        self._changed = asyncio.Condition()
        self._closing = False

    async def version(self) -> str:
        """The current version (from Redis; created on first use)."""
        value = await self._redis.get(keys.queue_version())
        if value is None:
            await self._redis.set(keys.queue_version(), secrets.token_hex(16), nx=True)
            value = await self._redis.get(keys.queue_version())
        return value.decode() if isinstance(value, bytes) else str(value)

    async def tick(self) -> None:
        """Jobs became pending: every runner's next request must look at the database."""
        version = secrets.token_hex(16)
        await self._redis.set(keys.queue_version(), version)
        await self._redis.publish(keys.queue_channel(), version)
        await self._observe(version)

    async def wait_for_change(self, seen: str, timeout: float) -> str | None:
        """Wait until the version differs from ``seen``; the new one, or None after ``timeout``."""

        def changed() -> bool:
            return self._closing or (self._version is not None and self._version != seen)

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(changed), timeout)
            except TimeoutError:
                return None
            return None if self._closing else self._version

    async def close(self) -> None:
        """The server is stopping: release every held request now (they answer 204)."""
        async with self._changed:
            self._closing = True
            self._changed.notify_all()

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
            await self._observe(await self.version())
            while True:
                message = await pubsub.get_message(timeout=self._heartbeat)
                if message and message.get("type") == "message":
                    data = message["data"]
                    await self._observe(data.decode() if isinstance(data, bytes) else str(data))
                else:
                    await self._observe(await self.version())
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _observe(self, version: str) -> None:
        if version != self._version:
            async with self._changed:
                self._version = version
                self._changed.notify_all()
