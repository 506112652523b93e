"""ChannelListener on a real PostgreSQL: payloads arrive, its statements pass the observer, and a
killed connection is reported and replaced."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from conveyor.protocol import keepalive
from conveyor.server.db import StatementObserver, create_engine
from conveyor.server.db.notifications import ChannelListener

pytestmark = pytest.mark.integration


async def test_payloads_arrive_statements_are_observed_and_a_lost_connection_comes_back(database_url: str) -> None:
    observer = StatementObserver("raise")
    seen: list[str] = []
    observer.add_listener(lambda statement, _params: seen.append(statement))
    payloads: asyncio.Queue[str] = asyncio.Queue()
    events: list[str] = []
    listening = asyncio.Event()

    def on_listening() -> None:
        events.append("listening")
        listening.set()

    listener = ChannelListener(
        database_url, "conveyor_test_channel", observer, keepalive.KeepaliveConfig(),
        on_payload=payloads.put_nowait, on_listening=on_listening, on_lost=lambda: events.append("lost"),
        application_name="conveyor-test-listener", ping_interval=0.2, reconnect_delay=0.1,
    )
    task = asyncio.create_task(listener.run())
    engine = create_engine(database_url, StatementObserver("raise"), pool_size=1)
    try:
        await asyncio.wait_for(listening.wait(), 10)
        async with engine.begin() as conn:
            await conn.execute(sa.text("SELECT pg_notify('conveyor_test_channel', '42')"))
        assert await asyncio.wait_for(payloads.get(), 10) == "42"
        assert 'LISTEN "conveyor_test_channel"' in seen
        await asyncio.sleep(0.5)
        assert "SELECT 1" in seen  # the keep-alive pings pass the hook too
        listening.clear()
        async with engine.begin() as conn:
            await conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'conveyor-test-listener'"
            ))
        await asyncio.wait_for(listening.wait(), 10)
        assert events == ["listening", "lost", "listening"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await engine.dispose()
