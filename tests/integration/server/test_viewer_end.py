"""A live tail ends when its job does, whichever code path ends it: the tail hears of it through
PostgreSQL's NOTIFY (migration 0007), not at its next heartbeat."""

from __future__ import annotations

import asyncio

import pytest

from conveyor.server.db import queries
from tests.integration.server.test_viewer import claimed, next_event, tail  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration


@pytest.fixture
def server_settings(server_settings):  # noqa: ANN001, ANN201
    # a heartbeat (and with it the tail's own status re-check) far beyond the client's 5 s read timeout
    return server_settings.with_overrides(sse_heartbeat=300)


async def test_a_job_failed_by_the_server_ends_its_tail_before_any_heartbeat(live_server, claimed) -> None:  # noqa: ANN001, F811
    project, runner = claimed
    services = live_server.services
    await asyncio.wait_for(services.job_tokens.listening.wait(), 30)
    await runner.patch(b"working...\n")
    async with tail(live_server.url, project, runner.job["id"]) as events:
        first = await next_event(events, skip=(None, "message"))  # the log so far (after the retry field)
        assert first.event == "log"
        async with services.engine.connect() as conn:  # as the stuck-job sweeper does it
            job = await queries.jobs.get(conn, runner.job["id"])
        await services.job_updates.drop(job, "stuck_or_timeout_failure")
        end = await next_event(events, skip=(None, "message", "log"))  # within the client's 5 s read timeout
    assert end.event == "end" and '"status":"failed"' in end.data
