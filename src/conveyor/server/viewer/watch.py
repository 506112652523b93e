"""The "being watched" flag: live viewers make runners send their log every 3 s instead of 60 s.

GitLab's ``Gitlab::Ci::Trace#being_watched!`` sets ``…:watched`` with a 10 s TTL whenever the UI
polls a running job's log; PATCH and PUT answers then carry the shorter
``X-GitLab-Trace-Update-Interval``. A live tail refreshes the flag every few seconds while it is
attached, so it lapses at most ``TTL`` seconds after the last viewer left.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from conveyor.server import keys

TTL = 10  # seconds (GitLab's)
REFRESH = 3.0  # seconds between refreshes by an attached viewer, well inside the TTL
# seconds a process trusts its last reading of a job's flag: every PATCH and PUT asks, and one
# Redis EXISTS each was ~4% of the server's CPU under 4 KiB PATCHes; the flag already lapses
# TTL seconds late, and a viewer on this process sets the reading at once
SEEN_FOR = 1.0
REMEMBERED = 10_000  # jobs a process keeps marks and readings of before dropping the stale ones


class Watchers:
    def __init__(self, redis: Redis, *, interval: int, watched_interval: int) -> None:
        self._redis = redis
        self._interval = interval
        # watching never slows a runner down, even where the unwatched interval is the shorter
        self._watched_interval = min(watched_interval, interval)
        self._marked: dict[int, float] = {}  # job -> when this process last set its flag
        self._seen: dict[int, tuple[bool, float]] = {}  # job -> (flag, when read)

    async def mark(self, job_id: int) -> None:
        """Someone follows the job now (idempotent; call every ``REFRESH`` seconds).

        Viewers of one job on one process share a refresh: 1,000 viewers are not 1,000 SETs.
        """
        now = time.monotonic()
        if now - self._marked.get(job_id, -TTL) < REFRESH / 2:
            return
        if len(self._marked) > REMEMBERED:
            self._marked = {job: at for job, at in self._marked.items() if now - at < TTL}
        self._marked[job_id] = now
        await self._redis.set(keys.trace_watched(job_id), b"1", ex=TTL)
        self.saw(job_id, True)

    def saw(self, job_id: int, flag: bool) -> None:
        """A fresh reading of the flag (a viewer's mark, the append script's report, Redis)."""
        now = time.monotonic()
        if len(self._seen) > REMEMBERED:
            self._seen = {job: entry for job, entry in self._seen.items() if now - entry[1] < SEEN_FOR}
        self._seen[job_id] = (flag, now)

    async def watched(self, job_id: int) -> bool:
        seen = self._seen.get(job_id)
        if seen is not None and time.monotonic() - seen[1] < SEEN_FOR:
            return seen[0]
        flag = bool(await self._redis.exists(keys.trace_watched(job_id)))
        self.saw(job_id, flag)
        return flag

    async def update_interval(self, job_id: int) -> int:
        """Seconds a runner should wait between log PATCHes for this job (the header's value)."""
        if self._watched_interval == self._interval:
            return self._interval
        try:
            return self._watched_interval if await self.watched(job_id) else self._interval
        except RedisError:  # a hint only: never fail a runner's request over it
            return self._interval
