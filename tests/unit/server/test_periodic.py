"""``server.periodic``: ``every``, the one loop behind every background pass, and the ``Pulse``
that paces the per-second ones."""

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


async def test_paced_passes_run_only_at_beats_that_say_they_have_work() -> None:
    answers = [{"a": True, "b": False}, {"a": False, "b": False}, RuntimeError("the database is away"), {"a": False, "b": True}]
    asked, log, ran = [], Log(), {"a": 0, "b": 0}

    async def probe() -> dict[str, bool]:
        answer = answers[min(len(asked), len(answers) - 1)]
        asked.append(answer)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def counting(name: str):  # noqa: ANN202
        async def step() -> None:
            ran[name] += 1
        return step

    pulse = periodic.Pulse(0.01, probe, log)
    tasks = [asyncio.create_task(pulse.run()),
             *(asyncio.create_task(periodic.every(60, counting(name), log, f"{name}_failed", pulse=pulse, name=name)) for name in ran)]
    while pulse.beats < 4:
        await asyncio.sleep(0.002)
    await asyncio.sleep(0.001)  # the passes woken by the fourth beat have run
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    # a: the first beat, and the third (its probe failed: every pass runs); b: the third and fourth
    assert len(asked) >= 4 and log.events.count("pulse_probe_failed") >= 1
    assert ran["a"] == 2 and ran["b"] >= 2, (ran, asked)  # later beats repeat the fourth answer


async def test_a_busy_paced_pass_takes_the_latest_answer_when_it_is_done() -> None:
    release, runs, log = asyncio.Event(), [], Log()
    due = {"slow": True}

    async def probe() -> dict[str, bool]:
        return dict(due)

    async def slow() -> None:
        runs.append(pulse.beats)
        if len(runs) == 1:
            await release.wait()

    pulse = periodic.Pulse(0.005, probe, log)
    tasks = [asyncio.create_task(pulse.run()), asyncio.create_task(periodic.paced(pulse, "slow", slow, log, "slow_failed"))]
    while pulse.beats < 5:  # beats pass while the first run is busy
        await asyncio.sleep(0.002)
    due["slow"] = False
    beats = pulse.beats
    while pulse.beats < beats + 2:  # answers that say "nothing" now
        await asyncio.sleep(0.002)
    release.set()
    await asyncio.sleep(0.02)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert runs == [1]  # the beats it missed said nothing by the time it was done: no second run
