"""A background pass run every few seconds for the server's lifetime (the scheduler, the sweeper,
the bridges, pipeline schedules, repository polling, hook deliveries, artifact expiry, environment
auto-stop): each is a ``step`` that is safe from any number of server processes at once. The
passes that run every second (scheduler, bridges, hook deliveries) are ``paced`` by one ``Pulse``,
whose one statement a beat tells which of them has work: an idle server asks the database one
question a second, not three transactions of eight statements.

Imports nothing of Conveyor's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any


async def every(
    interval: float, step: Callable[[], Awaitable[object]], log: Any, failed: str, *, on_failure: Callable[[], None] | None = None,
    pulse: Pulse | None = None, name: str = "",
) -> None:
    """``await step()``, then sleep ``interval`` seconds, until cancelled. A failing pass (the
    database briefly away) is logged on ``log`` as ``failed`` with its traceback and counted by
    ``on_failure``; the next pass tries again. With a ``pulse``, at its beats instead, when it
    says pass ``name`` has work (``paced``)."""
    if pulse is not None:
        await paced(pulse, name, step, log, failed, on_failure=on_failure)
        return
    while True:
        await _attempt(step, log, failed, on_failure)
        await asyncio.sleep(interval)


async def _attempt(step: Callable[[], Awaitable[object]], log: Any, failed: str, on_failure: Callable[[], None] | None) -> None:
    """One pass; a failure is logged as ``failed`` with its traceback and counted, never raised."""
    try:
        await step()
    except Exception:
        if on_failure is not None:
            on_failure()
        log.exception(failed)


class Pulse:
    """One question every ``interval`` seconds for several passes that would otherwise each ask
    the database, every ``interval`` seconds, whether they have anything to do: ``probe()``
    answers for all of them at once ({pass name: has work}), and ``paced`` runs a pass only at a
    beat whose answer says it has work (or at one whose probe failed: then every pass runs, and
    meets the failure itself). A pass still busy at a beat takes the latest answer when it is done.
    """

    def __init__(self, interval: float, probe: Callable[[], Awaitable[Mapping[str, bool]]], log: Any) -> None:
        self._interval = interval
        self._probe = probe
        self._log = log
        self._due: Mapping[str, bool] | None = None  # the latest answer; None: unknown
        self.beats = 0
        self._beat = asyncio.Event()

    async def run(self) -> None:
        """Ask, tell the passes, sleep; until cancelled."""
        while True:
            try:
                self._due = await self._probe()
            except Exception:
                self._log.exception("pulse_probe_failed")
                self._due = None
            self.beats += 1
            beat, self._beat = self._beat, asyncio.Event()
            beat.set()
            await asyncio.sleep(self._interval)

    async def wait(self, name: str, after: int) -> int:
        """The first beat later than ``after`` at which ``name`` has work (or may have); its number."""
        while True:
            if self.beats > after:
                if self._due is None or self._due.get(name, True):
                    return self.beats
                after = self.beats
            await self._beat.wait()


async def paced(
    pulse: Pulse, name: str, step: Callable[[], Awaitable[object]], log: Any, failed: str,
    *, on_failure: Callable[[], None] | None = None,
) -> None:
    """``every``, at ``pulse``'s beats that say pass ``name`` has work, until cancelled."""
    beat = 0
    while True:
        beat = await pulse.wait(name, beat)
        await _attempt(step, log, failed, on_failure)
