"""Running jobs' token checks, remembered per process and forgotten the moment a token is revoked.

Every log PATCH proves its job token. Asking PostgreSQL each time was the largest share of pooled
connection checkouts with 500 jobs streaming (bench/traces part (b)); on a busy event loop each
checkout is held for tens of milliseconds, so the pool ran dry. A job's token works while the job
is ``running`` or ``canceling``, and what a PATCH needs of the row changes only when the token is
revoked or the status moves, so the checked row is kept here and reused.

Revocation (migration 0007): a trigger on ``jobs`` NOTIFYs ``conveyor_job_revoked`` with the job
id when a running or canceling job changes status or token, or is deleted, whatever code path does
it: the final update, a cancel, the sweeper, a requeue of an unacknowledged job, a plain SQL
statement. PostgreSQL delivers it when that transaction commits. Each server process LISTENs on
a connection of its own (``db.notifications``: not from the pool, TCP keepalive set, pinged every
``ping_interval`` seconds) and drops the job's entry, so the next PATCH reads the row again: 403 for a job no longer
running, ``Job-Status: canceling`` for one being canceled. While that connection is down nothing
is cached or served from the cache; it reconnects with an empty cache (notifications sent
meanwhile are lost to it). A lookup that started before a revocation and ends after its
notification is not stored: ``generation`` moves with every notification and reconnection.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from conveyor.protocol import JobStatus, keepalive
from conveyor.server.db import StatementObserver
from conveyor.server.db.notifications import ChannelListener

log = structlog.get_logger(__name__)

CHANNEL = "conveyor_job_revoked"
APPLICATION_NAME = "conveyor-job-revocations"  # how the LISTEN connection shows in pg_stat_activity
MAX_ENTRIES = 50_000  # running jobs remembered per process; the oldest are dropped first


class JobTokenCache:
    def __init__(
        self,
        database_url: str,
        observer: StatementObserver,
        keepalive_config: keepalive.KeepaliveConfig,
        *,
        max_entries: int = MAX_ENTRIES,
        ping_interval: float = 5.0,
        reconnect_delay: float = 0.5,
    ) -> None:
        self._listener = ChannelListener(
            database_url, CHANNEL, observer, keepalive_config, on_payload=self._notified,
            on_listening=self._listening, on_lost=self._forget_all, application_name=APPLICATION_NAME,
            ping_interval=ping_interval, reconnect_delay=reconnect_delay,
        )
        self._max_entries = max_entries
        self._callbacks: list[Callable[[int], None]] = []
        self._rows: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self.generation = 0
        self.listening = asyncio.Event()
        self.hits = self.misses = 0

    def get(self, job_id: int, token_hash: str) -> Mapping[str, Any] | None:
        """The job's row as last read, if its token is ``token_hash`` and nothing revoked it since."""
        row = self._rows.get(job_id) if self.listening.is_set() else None
        if row is None or row["token_hash"] != token_hash:
            self.misses += 1
            return None
        self.hits += 1
        return row

    def put(self, row: Mapping[str, Any], generation: int) -> None:
        """Remember a row read while ``self.generation`` was ``generation`` (a running job's only)."""
        if not self.listening.is_set() or generation != self.generation or not JobStatus(row["status"]).is_active:
            return
        self._rows[row["id"]] = dict(row)
        self._rows.move_to_end(row["id"])
        while len(self._rows) > self._max_entries:
            self._rows.popitem(last=False)

    def touched(self, job_id: int) -> None:
        """The job's row was just touched (``updated_at``, ``acked_at``): keep the copy in step."""
        row = self._rows.get(job_id)
        if row is not None:
            now = datetime.now(UTC)
            self._rows[job_id] = {**row, "updated_at": now, "acked_at": row["acked_at"] or now}

    def revoke(self, job_id: int) -> None:
        self.generation += 1
        self._rows.pop(job_id, None)

    def _forget_all(self) -> None:
        self.listening.clear()
        self.generation += 1
        self._rows.clear()

    def on_revoked(self, callback: Callable[[int], None]) -> None:
        """Also tell ``callback`` the id of every job whose revocation arrives (its status moved:
        finished, canceling, canceled, requeued), e.g. so that live tails end at once."""
        self._callbacks.append(callback)

    def _notified(self, payload: str) -> None:
        try:
            job_id = int(payload)
        except ValueError:
            log.warning("job_revoked_malformed", payload=payload)
            self._rows.clear()
            return
        self.revoke(job_id)
        for callback in self._callbacks:
            callback(job_id)

    def _listening(self) -> None:
        self.generation += 1
        self.listening.set()

    async def run(self) -> None:
        """Listen for revocations until cancelled (``db.notifications``): after any failure the
        cache is forgotten and nothing is served from it until it listens again."""
        await self._listener.run()
