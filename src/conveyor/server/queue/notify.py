"""Queue ticks across every server process, and targeted wake-ups of held job requests.

A job becoming pending calls ``tick(queued)``: a new random version is stored in Redis and
published on one channel with the new jobs' tags. Each server process runs one subscriber
(``run()``). For every new job it wakes the longest-waiting held request *whose runner may take
that job* (``WAKE_PER_JOB``), not every held request: with hundreds of idle runners, a wake-all
would send hundreds of claims to the database for each job (a thundering herd). A woken request
whose claim finds nothing (another process's runner, or a runner just back from a job, took it
first; a project runner woken for another project's job) ``relay``s the wake to one more waiter,
once per tick: the second chance that waking two at once gave, paid only when the first claim
fails (issue 24: the second claim of every job was a transaction spent for nothing).
A tick without job details (cancel, a lost message noticed by the heartbeat) wakes everyone.

The subscriber also re-reads the version every ``heartbeat`` seconds, so a lost pub/sub message
or a dropped subscription delays a wake-up, never loses it.

Each process remembers the last ``HISTORY`` versions with their jobs, so a runner echoing an older
version is sent to the database only if a job it may take became pending since (``missed``):
at 20 new jobs a second every version is stale within 50 ms, and answering "the version moved"
with a claim sent every returning or re-waiting runner to a claim it could not win (7 claims per
request in bench/dispatch). A tick's jobs carry their ids, and the process remembers the jobs its
own requests claimed after it observed their tick (``claimed``): such a job is no longer pending,
so it sends nobody to the database. A runner back from its job, every later job taken by the
other runners of this process, skips the claim that would find nothing (a transaction per job in
bench/e2e). A job claimed here before its tick arrived, or by another process, still counts (a
claim too many, never one too few); a requeued job comes back in a later tick, which counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis

from conveyor.server import keys
from conveyor.server.db.queries.jobs import Queued

log = structlog.get_logger(__name__)

WAKE_PER_JOB = 1  # a failed claim relays the wake once (``relay``)
MAX_DETAILED = 500  # above this many new jobs a tick just wakes everyone
HISTORY = 1024  # versions remembered with their jobs; an older echo counts as "anything may have changed"
CLAIMED = 4096  # jobs claimed by this process remembered (with the tick they were claimed after)


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
        self._seq = 0  # ticks observed by this process
        self._history: deque[tuple[int, str, list | None]] = deque(maxlen=HISTORY)  # (seq, version, jobs)
        self._relayed: set[str] = set()  # versions whose wake a failed claim passed on already
        self._claimed: OrderedDict[int, int] = OrderedDict()  # job id -> the last tick observed before its claim
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
        jobs = None if queued is None or len(queued) > MAX_DETAILED else [[list(q.tags), q.protected, q.job_id] for q in queued]
        await self._redis.set(keys.queue_version(), version)
        await self._redis.publish(keys.queue_channel(), json.dumps({"version": version, "jobs": jobs}))
        self._observe(version, jobs)

    def claimed(self, job_id: int) -> None:
        """A request of this process claimed ``job_id``: ticks observed up to now that carried it
        no longer count as a job pending for anyone (``missed``, ``wait_for_change``)."""
        self._claimed[job_id] = self._seq
        self._claimed.move_to_end(job_id)
        while len(self._claimed) > CLAIMED:
            self._claimed.popitem(last=False)

    def mark(self) -> int:
        """A point in this process's sequence of observed ticks, for ``wait_for_change``."""
        return self._seq

    def missed(self, seen: str | None, appetite: Appetite = ANY) -> bool:
        """Whether a job ``appetite`` accepts may have become pending after version ``seen``.

        True when ``seen`` is unknown here (None, too old, not observed yet) or a tick observed
        after it carried such a job or no job details; False when ``seen`` is current or every
        later tick was for jobs this runner may not take.
        """
        if seen is not None and seen == self._version:
            return False
        since = next((seq for seq, version, _ in self._history if version == seen), None)
        return since is None or self._relevant_since(since, appetite)

    async def wait_for_change(self, since: int, timeout: float, appetite: Appetite = ANY) -> str | None:
        """Wait until woken for a job ``appetite`` accepts, or return at once if one was observed
        after ``since`` (a ``mark()``); the version then, or None after ``timeout`` or when closing."""
        if self._closing:
            return None
        if self._relevant_since(since, appetite):
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

    def relay(self, version: str | None, appetite: Appetite = ANY) -> None:
        """A request woken at ``version`` claimed nothing: wake one more waiter that may take one
        of that tick's jobs ``appetite`` accepts, once per tick (a relayed waiter that finds
        nothing too ends the chain: both lost to runners that took the jobs)."""
        jobs = next((jobs for _, seen, jobs in self._history if seen == version), None)
        if not jobs or version in self._relayed:
            return  # unknown, too old, or a tick without details (everyone was woken)
        self._relayed.add(version)
        wanted = [(job[0], job[1]) for job in jobs if appetite.accepts(job[0], job[1])]
        self._wake(lambda waiter: any(waiter.appetite.accepts(tags, protected) for tags, protected in wanted), version, limit=1)

    def _relevant_since(self, since: int, appetite: Appetite) -> bool:
        if since < self._seq - len(self._history):
            return True  # older than the history: anything may have happened
        for seq, _, jobs in reversed(self._history):
            if seq <= since:
                return False
            if jobs is None or any(appetite.accepts(job[0], job[1]) and not self._taken(job, seq) for job in jobs):
                return True
        return False

    def _taken(self, job: list, seq: int) -> bool:
        """Whether this process claimed ``job`` (``[tags, protected, id]``) after observing tick ``seq``."""
        return len(job) > 2 and self._claimed.get(job[2], -1) >= seq

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
        if version == self._version or any(version == seen for _, seen, _ in self._history):
            return  # current, or a message overtaken by a later tick already observed
        self._version = version
        self._seq += 1
        if len(self._history) == self._history.maxlen:
            self._relayed.discard(self._history[0][1])  # forgotten with its tick
        self._history.append((self._seq, version, jobs))
        if jobs is None:
            self._wake(lambda _waiter: True, version, limit=None)
            return
        for tags, protected, *_ in jobs:
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
