"""A background pass run every few seconds for the server's lifetime (the scheduler, the sweeper,
the bridges, pipeline schedules, repository polling, hook deliveries, artifact expiry, environment
auto-stop): each is a ``step`` that is safe from any number of server processes at once.

Imports nothing of Conveyor's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


async def every(
    interval: float, step: Callable[[], Awaitable[object]], log: Any, failed: str, *, on_failure: Callable[[], None] | None = None
) -> None:
    """``await step()``, then sleep ``interval`` seconds, until cancelled. A failing pass (the
    database briefly away) is logged on ``log`` as ``failed`` with its traceback and counted by
    ``on_failure``; the next pass tries again."""
    while True:
        try:
            await step()
        except Exception:
            if on_failure is not None:
                on_failure()
            log.exception(failed)
        await asyncio.sleep(interval)
