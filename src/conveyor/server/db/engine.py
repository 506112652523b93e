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
import traceback
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy import event
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
) -> AsyncEngine:
    """An asyncpg engine whose every statement passes ``observer`` and whose TCP connections
    to PostgreSQL set keepalive (asyncpg has no option for it, so it is set on connect)."""
    engine = create_async_engine(
        to_asyncpg_url(url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )
    observer.attach(engine)
    config = keepalive_config or keepalive.KeepaliveConfig()
    event.listen(engine.sync_engine, "connect", lambda dbapi_conn, _record: _set_keepalive(dbapi_conn, config))
    return engine


def _set_keepalive(dbapi_connection: Any, config: keepalive.KeepaliveConfig) -> None:
    transport = getattr(getattr(dbapi_connection, "_connection", None), "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        keepalive.apply(sock, config)


def to_asyncpg_url(url: str) -> str:
    """Accept ``postgresql://`` / ``postgres://`` URLs and select the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url!r}")
