"""queue.admission.Admission: at most ``limit`` pipeline creations in their turn at once, the rest
in arrival order, and a turn that outlasts ``step_aside`` stops counting."""

from __future__ import annotations

import asyncio

import pytest

from conveyor.server.queue.admission import Admission

pytestmark = pytest.mark.unit


async def _burst(admission: Admission, count: int) -> tuple[list[int], list[int]]:
    """``count`` creations arriving in order, each held until released; (entry order, in progress seen)."""
    entered: list[int] = []
    seen: list[int] = []
    release = asyncio.Event()

    async def create(number: int) -> None:
        async with admission.turn():
            entered.append(number)
            seen.append(admission.in_progress)
            await release.wait()

    tasks = [asyncio.create_task(create(number)) for number in range(count)]
    await asyncio.sleep(0.01)
    assert admission.waiting == (max(0, count - admission.limit) if admission.limit else 0)
    release.set()
    await asyncio.gather(*tasks)
    return entered, seen


async def test_creations_past_the_limit_wait_and_enter_in_arrival_order() -> None:
    admission = Admission(2)
    entered, seen = await _burst(admission, 6)
    assert entered == list(range(6))
    assert max(seen) == 2 and admission.peak == 2
    assert admission.in_progress == 0 and admission.waiting == 0 and admission.stepped_aside == 0


async def test_no_limit_lets_every_creation_in_at_once() -> None:
    admission = Admission(0)
    _, seen = await _burst(admission, 6)
    assert admission.peak == 6 and max(seen) == 6 and admission.in_progress == 0


async def test_a_failed_creation_gives_its_turn_back() -> None:
    admission = Admission(1)
    with pytest.raises(ValueError):
        async with admission.turn():
            raise ValueError("bad config")
    async with asyncio.timeout(1):
        async with admission.turn():
            assert admission.in_progress == 1
    assert admission.in_progress == 0


async def test_a_waiting_creation_whose_client_left_is_no_longer_counted() -> None:
    admission = Admission(1)

    async def wait_for_a_turn() -> None:
        async with admission.turn():
            pass

    async with admission.turn():
        waiter = asyncio.create_task(wait_for_a_turn())
        await asyncio.sleep(0.01)
        assert admission.waiting == 1
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert admission.waiting == 0
    async with asyncio.timeout(1):
        async with admission.turn():
            assert admission.in_progress == 1


async def test_a_slow_creation_steps_aside_and_the_next_one_starts() -> None:
    """A creation past ``step_aside`` (a slow remote fetch) stops holding the only turn: the next
    starts after 0.1 s, not after the slow one's 1 s; both finish, and the count comes back to 0."""
    admission = Admission(1, step_aside=0.1)
    loop = asyncio.get_running_loop()
    started: dict[str, float] = {}
    begin = loop.time()

    async def create(name: str, seconds: float) -> None:
        async with admission.turn():
            started[name] = loop.time() - begin
            await asyncio.sleep(seconds)

    slow = asyncio.create_task(create("slow", 1.0))
    await asyncio.sleep(0.01)
    await create("quick", 0.0)
    assert 0.09 <= started["quick"] < 0.9, started
    assert not slow.done()
    await slow
    assert admission.stepped_aside == 1 and admission.in_progress == 0
    async with asyncio.timeout(1):  # the slow one's exit gave nothing back twice: one turn, still one
        async with admission.turn():
            assert admission.in_progress == 1
        await _burst(admission, 3)
    assert admission.peak == 1
