"""The async engine: every statement passes the ``StatementObserver`` (``observer.py``) and,
when given, the sqlcommenter ``Commenter`` (``comments.py``); every connection sets TCP keepalive
and the server-side bounds ``statement_timeout`` and ``idle_in_transaction_session_timeout``.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from conveyor.protocol import keepalive
from conveyor.server.db.comments import Commenter
from conveyor.server.db.observer import SavepointDetected, StatementObserver

__all__ = ["ConnectionBounds", "SavepointDetected", "StatementObserver", "create_engine", "set_asyncpg_keepalive", "to_asyncpg_url"]


@dataclass(frozen=True)
class ConnectionBounds:
    """Server-side limits set on every connection (seconds; 0 turns one off)."""

    statement_timeout: float = 60.0
    idle_in_transaction_timeout: float = 60.0
    application_name: str = "conveyor"

    def server_settings(self) -> dict[str, str]:
        return {
            "statement_timeout": str(int(self.statement_timeout * 1000)),
            "idle_in_transaction_session_timeout": str(int(self.idle_in_transaction_timeout * 1000)),
            "application_name": self.application_name,
        }


def create_engine(
    url: str,
    observer: StatementObserver,
    *,
    pool_size: int = 10,
    keepalive_config: keepalive.KeepaliveConfig | None = None,
    ping_after_idle: float = 10.0,
    bounds: ConnectionBounds | None = None,
    commenter: Commenter | None = None,
) -> AsyncEngine:
    """An asyncpg engine whose every statement passes ``observer`` (and ``commenter``), whose TCP connections to
    PostgreSQL set keepalive (asyncpg has no option for it, so it is set on connect), and which
    pings a pooled connection only when it sat idle ``ping_after_idle`` seconds or more."""
    engine = create_async_engine(
        to_asyncpg_url(url), pool_size=pool_size, max_overflow=pool_size,
        connect_args={"server_settings": (bounds or ConnectionBounds()).server_settings()},
    )
    observer.attach(engine)  # first: it sees each statement as written, before any comment
    if commenter is not None:
        commenter.attach(engine)
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
