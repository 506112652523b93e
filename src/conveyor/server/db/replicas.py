"""Read replicas: stale-tolerant reads go to a streaming replica that has caught up, else the primary.

``Reads.run(work)`` runs one read (``work(conn)``, a single statement in autocommit) for callers
whose answer may be slightly old: log reads, API listings, dashboards. Everything else, the job
queue's claims above all, stays on the primary engine and never comes here.

Read-your-writes, as GitLab's load balancer does it (``gitlab-server-internals.md`` 4.6):

1. Each HTTP request, background task pass or API session runs inside a ``WriteSession``
   (``write_session()``; the middleware shares one per admin or job token for ``STICKY_SECONDS``).
2. A statement on the primary that may write (anything but ``SELECT``/``SHOW``/transaction
   control) marks the session as having written. Nothing is asked of PostgreSQL on the write path.
3. The session's next replica-eligible read first asks the primary for ``pg_current_wal_insert_lsn()``
   once: a position at or after every write the session made.
4. A replica is used only if its ``pg_last_wal_replay_lsn()`` is at or past that position. Its
   replay position and lag are remembered for ``check_interval`` seconds, so a hot replica costs
   no extra round trip per read.
5. A replica whose lag exceeds ``max_lag`` seconds, or that cannot be reached, is skipped for
   ``retry_interval`` seconds and then tried again; meanwhile reads go to another one or the primary.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

import sqlalchemy as sa
import structlog
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from conveyor.server.db.transactions import single_statements

log = structlog.get_logger(__name__)
T = TypeVar("T")
STICKY_SECONDS = 30.0  # GitLab's write-location TTL
_READ_ONLY = re.compile(r"^\s*(?:/\*.*?\*/\s*)*(SELECT|SHOW|BEGIN|COMMIT|ROLLBACK|SET|RESET|LISTEN)\b", re.I | re.S)
_LOCKING = re.compile(r"\bFOR\s+(NO\s+KEY\s+)?(UPDATE|SHARE)\b", re.I)
_REPLICA_STATE = sa.text(
    "SELECT pg_last_wal_replay_lsn()::text AS replayed, "
    "CASE WHEN pg_last_wal_receive_lsn() IS NULL OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0 "
    "ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END AS lag"
)
_PRIMARY_LSN = sa.text("SELECT pg_current_wal_insert_lsn()::text")  # past every commit, flushed or not
_UNREACHABLE = (OSError, TimeoutError, InterfaceError, OperationalError, DBAPIError)


def parse_lsn(text: str) -> int:
    """``'16/B374D848'`` -> a comparable integer."""
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


@dataclass
class WriteSession:
    """What one request, task or API session wrote: a flag, then the primary's LSN after it."""

    wrote: bool = False
    lsn: int = 0
    expires: float = field(default_factory=lambda: time.monotonic() + STICKY_SECONDS)


_session: ContextVar[WriteSession | None] = ContextVar("conveyor_write_session", default=None)


@contextlib.contextmanager
def write_session(session: WriteSession | None = None) -> Iterator[WriteSession]:
    """Run the block (and the tasks it starts) as one session for read-your-writes."""
    session = session or WriteSession()
    token = _session.set(session)
    try:
        yield session
    finally:
        _session.reset(token)


class StickySessions:
    """One ``WriteSession`` per key (a token's hash) for ``STICKY_SECONDS`` after its last use, in
    this process: a client that writes and then lists through another request sees its write."""

    def __init__(self, limit: int = 10_000) -> None:
        self._sessions: dict[str, WriteSession] = {}
        self._limit = limit

    def get(self, key: str | None) -> WriteSession:
        now = time.monotonic()
        if key is None:
            return WriteSession()
        session = self._sessions.get(key)
        if session is None or session.expires < now:
            if len(self._sessions) >= self._limit:
                self._sessions = {k: s for k, s in self._sessions.items() if s.expires >= now}
            session = self._sessions[key] = WriteSession()
        session.expires = now + STICKY_SECONDS
        return session


def track_writes(primary: AsyncEngine) -> None:
    """Mark the current session whenever the primary runs a statement that may write."""

    def after(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        session = _session.get()
        if session is not None and (not _READ_ONLY.match(statement) or _LOCKING.search(statement)):
            session.wrote = True

    event.listen(primary.sync_engine, "after_cursor_execute", after)


@dataclass
class Replica:
    url: str
    engine: AsyncEngine
    skip_until: float = 0.0
    replayed: int = 0
    lag: float = 0.0
    checked_at: float = float("-inf")
    reads: int = 0
    skips: int = 0

    def skip(self, seconds: float, reason: str) -> None:
        self.skip_until = time.monotonic() + seconds
        self.checked_at = float("-inf")
        self.skips += 1
        log.warning("replica_skipped", replica=_safe(self.url), reason=reason, retry_in_s=seconds)


def _safe(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//", url)


class Reads:
    """Routes stale-tolerant reads; see the module docstring."""

    def __init__(
        self,
        primary: AsyncEngine,
        replicas: list[Replica],
        *,
        max_lag: float = 30.0,
        retry_interval: float = 10.0,
        check_interval: float = 1.0,
    ) -> None:
        self.primary = primary
        self.replicas = replicas
        self.max_lag = max_lag
        self.retry_interval = retry_interval
        self.check_interval = check_interval
        self.primary_reads = 0
        self._turn = itertools.count()
        if replicas:
            track_writes(primary)

    async def run(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """``work(conn)`` on a caught-up replica if there is one, else on the primary."""
        if self.replicas:
            needed = await self._needed_lsn()
            start = next(self._turn)
            for offset in range(len(self.replicas)):
                replica = self.replicas[(start + offset) % len(self.replicas)]
                if replica.skip_until > time.monotonic():
                    continue
                try:
                    async with single_statements(replica.engine).connect() as conn:
                        if not await self._caught_up(replica, conn, needed):
                            continue
                        result = await work(conn)
                except _UNREACHABLE as exc:
                    if not _connection_problem(exc):
                        raise
                    replica.skip(self.retry_interval, f"unreachable: {type(exc).__name__}")
                    continue
                replica.reads += 1
                return result
        self.primary_reads += 1
        async with single_statements(self.primary).connect() as conn:
            return await work(conn)

    async def _needed_lsn(self) -> int:
        session = _session.get()
        if session is None:
            return 0
        if session.wrote:
            session.wrote = False  # cleared first: a write racing this read marks it again
            async with single_statements(self.primary).connect() as conn:
                session.lsn = parse_lsn((await conn.execute(_PRIMARY_LSN)).scalar_one())
        return session.lsn

    async def _caught_up(self, replica: Replica, conn: AsyncConnection, needed: int) -> bool:
        now = time.monotonic()
        if now - replica.checked_at >= self.check_interval or replica.replayed < needed:
            row = (await conn.execute(_REPLICA_STATE)).one()
            # a server that is not in recovery (NULL) has every write: it is the primary itself
            replica.replayed = parse_lsn(row.replayed) if row.replayed else 1 << 64
            replica.lag, replica.checked_at = float(row.lag), now
        if replica.lag > self.max_lag:
            replica.skip(self.retry_interval, f"lag {replica.lag:.1f} s over {self.max_lag} s")
            return False
        return replica.replayed >= needed

    async def dispose(self) -> None:
        for replica in self.replicas:
            await replica.engine.dispose()


def _connection_problem(exc: BaseException) -> bool:
    """Anything but a fault in the statement itself (SQLSTATE classes 22, 23, 42): a replica that
    is down, starting up, promoted, or cancelled the read for a conflict with recovery."""
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "__cause__", None), "sqlstate", None)
    return not (sqlstate and sqlstate[:2] in ("22", "23", "42"))
