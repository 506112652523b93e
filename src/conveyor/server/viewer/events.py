"""Trace change notifications: one Redis pub/sub subscription per server process, fanned out locally.

Cross-process sequence for one appended byte:

1. Server B takes a PATCH; ``TraceStore.append`` returns the new size (the bytes are durable).
2. B publishes ``{"job_id": J, "size": S}`` on ``keys.trace_channel()`` (the Redis store does it
   inside the append's script, and only while the job's "being watched" flag is set).
3. Every server process receives it on its single subscription (``TraceEvents.run``), records
   S as J's latest size and wakes the local viewers waiting on J with a smaller known size.
4. A woken viewer reads the new bytes through ``TraceReader`` and sends them.

Pub/sub is fire-and-forget: a message published while a subscriber reconnects is lost. So
messages only ever *hurry* a viewer. Each viewer re-reads on its own timeout (its heartbeat), and
after a resubscription every waiter is woken to re-read: a lost message delays, never loses, a byte.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import OrderedDict
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from conveyor.server import keys
from conveyor.server.trace import Announcement

log = structlog.get_logger(__name__)
REMEMBERED_JOBS = 20_000  # latest sizes kept for jobs nobody waits on yet (closes the read/wait race)
INLINE_LIMIT = 16 * 1024  # appends up to this size travel in the message: viewers skip the read
RECENT_LIMIT = 32 * 1024  # per followed job: the latest inline bytes, for viewers a message or two behind


@dataclass(frozen=True)
class Change:
    """What woke a waiter. ``resync``: messages may have been lost, re-read. ``closed``: shutting down.

    ``data``, when set, is exactly the bytes at ``[size - len(data), size)`` (an append is
    offset-checked, so the bytes that made the log ``size`` long are these and no others).
    """

    size: int = 0
    data: bytes | None = None
    end: str | None = None
    resync: bool = False
    closed: bool = False


class TraceEvents:
    """Per-process fan-out of trace appends and job ends; safe to use from any task of one loop."""

    def __init__(self, redis: Redis, *, subscriber: Redis | None = None, reconnect_delay: float = 0.5) -> None:
        self._redis = redis
        # the subscription's client must not reconnect by itself (no retries): a loss has to reach
        # ``run`` so that every waiter re-reads what was published while it lasted
        self._subscriber = subscriber or redis
        self._channel = keys.trace_channel()
        self._reconnect_delay = reconnect_delay
        self._latest: OrderedDict[int, Change] = OrderedDict()
        self._waiters: dict[int, set[asyncio.Future[Change]]] = {}
        self._followers: dict[int, int] = {}  # job -> live tails attached on this process
        self._recent: dict[int, tuple[int, bytearray]] = {}  # job -> (offset of buf[0], latest bytes)
        self.subscribed = asyncio.Event()
        self.closed = False

    async def publish_appended(self, job_id: int, size: int, data: bytes | None = None) -> None:
        """Call after an append of ``data`` returned ``size`` (the bytes are durable)."""
        await self._publish(job_id, _appended(job_id, size, data))

    def announcement(self, job_id: int, size: int, data: bytes) -> Announcement:
        """The message ``publish_appended`` would send, for a TraceStore that ``announces``: it
        publishes it in the append's own step, and only while someone watches the job (a viewer
        sets the flag before it reads the size: ``Announcement``), so unwatched logs cost no
        message to every server process."""
        return Announcement(keys.trace_watched(job_id), self._channel, _appended(job_id, size, data))

    async def publish_finished(self, job_id: int, status: str) -> None:
        """Call after the transaction that made the job's status final has committed."""
        await self._publish(job_id, json.dumps({"job_id": job_id, "end": status}, separators=(",", ":")))

    async def _publish(self, job_id: int, message: str) -> None:
        try:
            await self._redis.publish(self._channel, message)
        except RedisError as exc:  # a viewer's timeout re-check picks the change up
            log.warning("trace_event_publish_failed", error=str(exc), job_id=job_id)

    async def wait(self, job_id: int, known_size: int, timeout: float) -> Change | None:
        """A change of job ``job_id`` past ``known_size`` bytes, or None after ``timeout`` seconds.

        Returns at once when this process already saw a larger size or the job's end.
        """
        if self.closed:
            return Change(closed=True)
        latest = self._latest.get(job_id)
        if latest is not None and (latest.size > known_size or latest.end):
            return latest
        future: asyncio.Future[Change] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(job_id, set())
        waiters.add(future)
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            while True:
                left = deadline - asyncio.get_running_loop().time()
                done, _ = await asyncio.wait({future}, timeout=left) if left > 0 else (set(), set())
                if not done:
                    return None
                change = future.result()
                if change.size > known_size or change.end or change.resync or change.closed:
                    return change
                waiters.discard(future)  # an older size: keep waiting
                future = asyncio.get_running_loop().create_future()
                waiters.add(future)
        finally:
            waiters.discard(future)
            if not waiters and self._waiters.get(job_id) is waiters:
                del self._waiters[job_id]

    def follow(self, job_id: int) -> None:
        """A live tail of the job starts here: keep its latest bytes in memory (see ``recent``)."""
        self._followers[job_id] = self._followers.get(job_id, 0) + 1

    def unfollow(self, job_id: int) -> None:
        left = self._followers.get(job_id, 0) - 1
        if left > 0:
            self._followers[job_id] = left
        else:
            self._followers.pop(job_id, None)
            self._recent.pop(job_id, None)

    def recent(self, job_id: int, start: int) -> bytes | None:
        """The log's bytes from ``start`` to the latest size this process heard of, if still in memory.

        A viewer that fell a message or two behind catches up from here instead of reading storage.
        """
        kept = self._recent.get(job_id)
        latest = self._latest.get(job_id)
        if kept is None or latest is None:
            return None
        base, buf = kept
        if not base <= start <= base + len(buf) or base + len(buf) != latest.size:
            return None
        return bytes(buf[start - base :])

    def _remember(self, job_id: int, change: Change) -> None:
        if change.data is None or job_id not in self._followers:
            return
        start = change.size - len(change.data)
        kept = self._recent.get(job_id)
        if kept is not None and kept[0] + len(kept[1]) == start:
            base, buf = kept
            buf += change.data
        else:  # the first, or after a gap (a large append, a lost message): start over from here
            base, buf = start, bytearray(change.data)
        if len(buf) > RECENT_LIMIT:
            cut = len(buf) - RECENT_LIMIT
            base, buf = base + cut, buf[cut:]
        self._recent[job_id] = (base, buf)

    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())

    def deliver(self, job_id: int, change: Change) -> None:
        """Record ``change`` and wake the job's waiters (the subscription calls this per message)."""
        previous = self._latest.pop(job_id, None)
        # only the size and the end are remembered: bytes are handed to current waiters, never kept
        size, end = max(previous.size if previous else 0, change.size), change.end or (previous.end if previous else None)
        self._latest[job_id] = Change(size=size, end=end)
        self._remember(job_id, change)
        while len(self._latest) > REMEMBERED_JOBS:
            self._latest.popitem(last=False)
        self._wake(self._waiters.get(job_id, ()), change)

    def status_changed(self, job_id: int) -> None:
        """The job's status moved (PostgreSQL said so, whatever code path moved it: the final
        update, a cancel, the sweeper): its tails on this process re-check it now, not at their
        next heartbeat, and end if the job did."""
        self._wake(self._waiters.get(job_id, ()), Change(resync=True))

    def _wake(self, futures: object, change: Change) -> None:
        for future in list(futures):  # type: ignore[call-overload]
            if not future.done():
                future.set_result(change)

    def _wake_all(self, change: Change) -> None:
        for waiters in list(self._waiters.values()):
            self._wake(waiters, change)
            waiters.clear()

    async def run(self) -> None:
        """Hold the subscription until cancelled; resubscribe (and wake everyone) after a loss."""
        first = True
        while not self.closed:
            pubsub = self._subscriber.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                self.subscribed.set()
                if not first:
                    self._wake_all(Change(resync=True))  # anything published meanwhile was lost
                first = False
                async for message in pubsub.listen():
                    self._handle(message)
            except (RedisError, OSError) as exc:
                self.subscribed.clear()
                log.warning("trace_events_subscription_lost", error=str(exc))
                await asyncio.sleep(self._reconnect_delay)
            finally:
                await pubsub.aclose()

    def _handle(self, message: dict[str, object]) -> None:
        if message.get("type") != "message":
            return
        try:
            body = json.loads(message["data"])  # type: ignore[arg-type]
            job_id = int(body["job_id"])
            data = base64.b64decode(body["data"]) if "data" in body else None
            change = Change(size=int(body.get("size", 0)), end=body.get("end"), data=data)
        except (ValueError, KeyError, TypeError):  # binascii.Error is a ValueError
            log.warning("trace_event_malformed", data=message.get("data"))
            return
        self.deliver(job_id, change)

    def close(self) -> None:
        """End every wait now (server shutdown): live tails return and their clients reconnect."""
        self.closed = True
        self._wake_all(Change(closed=True))

    async def aclose(self) -> None:
        """Close the subscriber's own client (after ``run`` is cancelled)."""
        if self._subscriber is not self._redis:
            await self._subscriber.aclose()


def _appended(job_id: int, size: int, data: bytes | None) -> str:
    """The JSON message of an append: ``{"job_id", "size"}``, with ``data`` (base64) when the
    bytes are at most ``INLINE_LIMIT``. Formatted directly (base64 needs no escaping): built for
    every PATCH, ``json.dumps`` was 4% of a 4 KiB one's CPU."""
    if data is not None and len(data) <= INLINE_LIMIT:
        return f'{{"job_id":{job_id},"size":{size},"data":"{base64.b64encode(data).decode("ascii")}"}}'
    return f'{{"job_id":{job_id},"size":{size}}}'
