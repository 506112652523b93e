"""How many pipeline creations one server process runs at once (``pipeline_creation_concurrency``).

A creation is the costliest request a server serves (the config's expansion, the jobs' insert,
its answer); a burst of them shares the CPU with the runners' requests and, unbounded, outruns
them: pipelines are created faster than their jobs can start, the pending queue grows for as
long as the burst lasts, and every job waits behind it (issue 24: 8 clients creating one-job
pipelines, create -> finish p99 2.6-2.9 s with no limit, 1.4 s with 2, 0.35-0.39 s with 1).
Bounded, a burst's creations take turns in arrival order while the runners' claims, logs and
final updates keep their share: a job is created about as fast as one can run.

A turn lasts at most ``step_aside`` seconds: a creation still going after it (a remote
repository's fetch, a slow ``include:remote``, a saturated machine) stops counting and the
next one starts, so a slow creation delays the others by that much, never by its whole length.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

STEP_ASIDE = 0.25  # seconds a creation may hold its turn


class Admission:
    """At most ``limit`` creations in their turn at once (0: no limit); counts for metrics and tests."""

    def __init__(self, limit: int, step_aside: float = STEP_ASIDE) -> None:
        self.limit, self.step_aside = limit, step_aside
        self._slots = asyncio.Semaphore(limit) if limit > 0 else None
        self.in_progress = 0  # creations in their turn
        self.waiting = 0
        self.peak = 0  # the most creations ever in their turn at once
        self.stepped_aside = 0  # turns that outlasted step_aside

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Wait for a turn (in arrival order), hold it while the block runs or for ``step_aside``."""
        slots = self._slots
        if slots is not None:
            self.waiting += 1
            try:
                await slots.acquire()
            finally:
                self.waiting -= 1
        self.in_progress += 1
        self.peak = max(self.peak, self.in_progress)
        held = True

        def give_back() -> None:
            nonlocal held
            if held:
                held = False
                self.in_progress -= 1
                if slots is not None:
                    slots.release()

        def step_aside() -> None:
            if held:
                self.stepped_aside += 1
                give_back()

        timer = asyncio.get_running_loop().call_later(self.step_aside, step_aside) if slots is not None else None
        try:
            yield
        finally:
            if timer is not None:
                timer.cancel()
            give_back()
