"""LISTEN on a PostgreSQL channel, on a connection of its own (not from the pool: a listener holds
its connection forever), kept alive and re-established.

TCP keepalive is set on the socket and the connection is pinged every ``ping_interval`` seconds,
so a connection a NAT dropped silently shows up as an error within a ping or two. After any
failure ``on_lost`` runs (notifications sent meanwhile are lost to this listener: callers that
cache must forget), then it reconnects; ``on_listening`` runs once each connection listens. The
LISTEN and every ping pass the engine's ``StatementObserver`` like any other statement.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import asyncpg
import structlog

from conveyor.protocol import keepalive
from conveyor.server.db.engine import StatementObserver, set_asyncpg_keepalive

log = structlog.get_logger(__name__)


class ChannelListener:
    def __init__(
        self,
        database_url: str,
        channel: str,
        observer: StatementObserver,
        keepalive_config: keepalive.KeepaliveConfig,
        *,
        on_payload: Callable[[str], None],
        on_listening: Callable[[], None],
        on_lost: Callable[[], None],
        application_name: str,
        ping_interval: float = 5.0,
        reconnect_delay: float = 0.5,
    ) -> None:
        self._dsn = _plain_url(database_url)
        self.channel = channel
        self._observer = observer
        self._keepalive = keepalive_config
        self._on_payload = on_payload
        self._on_listening = on_listening
        self._on_lost = on_lost
        self.application_name = application_name
        self._ping_interval = ping_interval
        self._reconnect_delay = reconnect_delay

    async def run(self) -> None:
        """Listen until cancelled; after any failure, report it and listen again."""
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self._dsn, server_settings={"application_name": self.application_name})
                set_asyncpg_keepalive(conn, self._keepalive)
                self._observer.observe(f'LISTEN "{self.channel}"')
                await conn.add_listener(self.channel, self._notified)
                self._on_listening()
                while True:  # a silent network loss shows up here within a ping or two
                    await asyncio.sleep(self._ping_interval)
                    self._observer.observe("SELECT 1")
                    await conn.fetchval("SELECT 1", timeout=self._ping_interval)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("channel_listener_connection_lost", channel=self.channel, error=str(exc) or type(exc).__name__)
            finally:
                self._on_lost()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.terminate()
            await asyncio.sleep(self._reconnect_delay)

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self._on_payload(payload)


def _plain_url(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url

