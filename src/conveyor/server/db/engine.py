"""The async engine and the one hook every SQL statement passes through.

``StatementObserver`` sees each statement before it reaches PostgreSQL. It counts them and it
watches for subtransactions: Conveyor issues zero ``SAVEPOINT``s (one savepoint while a long
transaction runs makes replicas thrash ``pg_subtrans``). Policy ``log`` counts the savepoint and
logs it with a backtrace; policy ``raise`` refuses the statement, which is what tests use.
Listeners (a future "doctor", metrics) subscribe with ``add_listener``.
"""

from __future__ import annotations

import re
import socket
import time
import traceback
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from conveyor.protocol import keepalive
from conveyor.protocol.errors import ConveyorError

log = structlog.get_logger(__name__)

_SUBTRANSACTION = re.compile(r"^\s*SAVEPOINT\b", re.I)  # opening one; RELEASE/ROLLBACK TO follow it

Listener = Callable[[str, Any], None]


class SavepointDetected(ConveyorError):
    """A SAVEPOINT (subtransaction) was sent to PostgreSQL; Conveyor issues none."""


class StatementObserver:
    """Counts statements and subtransactions; one per engine. Thread-safe enough for counters."""

    def __init__(self, policy: str = "log") -> None:
        if policy not in ("log", "raise"):
            raise ValueError("policy must be 'log' or 'raise'")
        self.policy = policy
        self.statements = 0
        self.savepoints = 0
        self.last_savepoint_stack: str | None = None
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(statement, parameters)`` for every statement, before it runs."""
        self._listeners.append(listener)

    def attach(self, engine: AsyncEngine) -> None:
        event.listen(engine.sync_engine, "before_cursor_execute", self._before_cursor_execute)

    def observe(self, statement: str, parameters: Any = None) -> None:
        self.statements += 1
        for listener in self._listeners:
            listener(statement, parameters)
        if _SUBTRANSACTION.match(statement):
            self.savepoints += 1
            self.last_savepoint_stack = "".join(traceback.format_stack(limit=40))
            log.error("savepoint_detected", statement=statement, stack=self.last_savepoint_stack)
            if self.policy == "raise":
                raise SavepointDetected(f"subtransaction refused: {statement}")

    def _before_cursor_execute(self, conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        self.observe(statement, parameters)


def create_engine(
    url: str,
    observer: StatementObserver,
    *,
    pool_size: int = 10,
    keepalive_config: keepalive.KeepaliveConfig | None = None,
    ping_after_idle: float = 10.0,
) -> AsyncEngine:
    """An asyncpg engine whose every statement passes ``observer``, whose TCP connections to
    PostgreSQL set keepalive (asyncpg has no option for it, so it is set on connect), and which
    pings a pooled connection only when it sat idle ``ping_after_idle`` seconds or more."""
    engine = create_async_engine(to_asyncpg_url(url), pool_size=pool_size, max_overflow=pool_size)
    observer.attach(engine)
    config = keepalive_config or keepalive.KeepaliveConfig()
    event.listen(engine.sync_engine, "connect", lambda dbapi_conn, _record: _set_keepalive(dbapi_conn, config))
    _ping_when_idle(engine, ping_after_idle)
    return engine


def _ping_when_idle(engine: AsyncEngine, idle: float) -> None:
    """Pessimistic disconnect handling, paid only where it can matter.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout, and its asyncpg ping is three round
    trips (BEGIN, SELECT, ROLLBACK): six per log PATCH, more than the PATCH's own statements. A
    connection that was in use within ``idle`` seconds is alive (and its socket's keepalive
    watches it meanwhile); an older one is pinged, and a dead one replaced before anyone sees it.
    A connection that dies while busy fails that one statement, and SQLAlchemy then invalidates
    the whole pool, so the next checkout connects afresh.
    """

    def checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    def checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        last = record.info.get("checked_in_at")
        if last is None or time.monotonic() - last < idle:
            return  # just connected, or in use moments ago
        try:
            dbapi_conn.ping()
        except Exception as exc:  # the pool discards it and checks out another
            raise DisconnectionError(f"pooled connection idle {time.monotonic() - last:.0f} s is dead") from exc

    event.listen(engine.sync_engine, "checkin", checkin)
    event.listen(engine.sync_engine, "checkout", checkout)


def _set_keepalive(dbapi_connection: Any, config: keepalive.KeepaliveConfig) -> None:
    set_asyncpg_keepalive(getattr(dbapi_connection, "_connection", None), config)


def set_asyncpg_keepalive(conn: Any, config: keepalive.KeepaliveConfig) -> None:
    """TCP keepalive on an asyncpg connection's socket (no-op on a unix socket)."""
    transport = getattr(conn, "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        keepalive.apply(sock, config)


def to_asyncpg_url(url: str) -> str:
    """Accept ``postgresql://`` / ``postgres://`` URLs and select the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url!r}")
