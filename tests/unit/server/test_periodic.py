"""``server.periodic.every``: the one loop behind every background pass."""

from __future__ import annotations

import asyncio

import pytest

from conveyor.server import periodic

pytestmark = pytest.mark.unit


class Log:
    def __init__(self) -> None:
        self.events: list[str] = []

    def exception(self, event: str) -> None:
        self.events.append(event)


async def test_a_failing_pass_is_logged_counted_and_the_next_one_runs() -> None:
    calls, failures, log = [], [], Log()

    async def step() -> None:
        calls.append(len(calls))
        if len(calls) == 2:
            raise RuntimeError("the database is away")
        if len(calls) == 4:
            await asyncio.Event().wait()  # stays here until cancelled

    task = asyncio.create_task(periodic.every(0.001, step, log, "pass_failed", on_failure=lambda: failures.append(1)))
    while len(calls) < 4:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task  # a cancel ends the loop, it is not taken for a failing pass
    assert calls == [0, 1, 2, 3] and log.events == ["pass_failed"] and failures == [1]
