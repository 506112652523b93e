"""Viewers share a few database slots per process; runners never wait behind them (real HTTP,
PostgreSQL, Redis)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from conveyor.server.viewer import tail as live
from tests.integration.server.test_viewer import claim_job, tail

pytestmark = pytest.mark.integration


async def test_an_attach_waits_for_a_slot_while_runner_patches_go_through(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    project, runner = await claim_job(live_server.url, tmp_path)
    await runner.patch(b"before\n")
    slots = live_server.services.live_tail.reading()
    for _ in range(live.SLOTS):  # every viewer slot busy
        await slots.acquire()

    async def attach() -> bytes:
        async with tail(live_server.url, project, runner.job["id"]) as events:
            while True:
                event = await anext(events)
                if event is not None and event.event == "log":
                    return event.data.encode()

    try:
        attaching = asyncio.create_task(attach())
        await asyncio.sleep(0.5)
        assert not attaching.done(), "a viewer read the database without a slot"
        response = await runner.patch(b"during\n")  # the runner does not queue behind viewers
        assert response.status_code == 202
    finally:
        for _ in range(live.SLOTS):
            slots.release()
    first = await asyncio.wait_for(attaching, 30)
    assert b"before" in first
    await runner.http.aclose()
