"""QueueNotifier on a real Redis: which echoed versions and marks count as "something to claim"."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from conveyor.server.db.queries.jobs import Queued
from conveyor.server.queue.notify import Appetite, QueueNotifier

pytestmark = pytest.mark.integration

UNTAGGED = Appetite(frozenset(), run_untagged=True, protected_only=False)


@pytest.fixture
async def notifier(redis_url: str):  # noqa: ANN201
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    yield QueueNotifier(redis)
    await redis.aclose()


def _job(job_id: int, *tags: str) -> Queued:
    return Queued(job_id, list(tags), False)


async def test_an_unknown_or_missing_version_means_look_at_the_queue(notifier: QueueNotifier) -> None:
    assert notifier.missed(None, UNTAGGED)
    assert notifier.missed("never-seen", UNTAGGED)


async def test_only_later_jobs_the_runner_may_take_count(notifier: QueueNotifier) -> None:
    await notifier.tick([_job(1)])
    seen = await notifier.version()
    assert not notifier.missed(seen, UNTAGGED)  # current
    await notifier.tick([_job(2, "gpu")])
    assert not notifier.missed(seen, UNTAGGED)  # only a job it may not take
    assert notifier.missed(seen, Appetite(frozenset({"gpu"}), run_untagged=False, protected_only=False))
    await notifier.tick([_job(3)])
    assert notifier.missed(seen, UNTAGGED)


async def test_a_tick_without_details_counts_for_everyone(notifier: QueueNotifier) -> None:
    await notifier.tick([_job(1)])
    seen = await notifier.version()
    await notifier.tick(None)  # e.g. a cancel
    assert notifier.missed(seen, Appetite(frozenset({"x"}), run_untagged=False, protected_only=False))


async def test_a_job_queued_between_a_claim_and_the_wait_returns_the_wait_at_once(notifier: QueueNotifier) -> None:
    mark = notifier.mark()
    await notifier.tick([_job(1)])  # while the claim ran
    assert await asyncio.wait_for(notifier.wait_for_change(mark, 5.0, UNTAGGED), 1.0) == await notifier.version()


async def test_a_wait_ignores_jobs_it_may_not_take_and_wakes_for_one_it_may(notifier: QueueNotifier) -> None:
    mark = notifier.mark()
    await notifier.tick([_job(1, "gpu")])
    waiting = asyncio.create_task(notifier.wait_for_change(mark, 5.0, UNTAGGED))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await notifier.tick([_job(2)])
    assert await asyncio.wait_for(waiting, 1.0) == await notifier.version()


async def test_a_mark_older_than_the_history_counts_as_missed(notifier: QueueNotifier) -> None:
    from conveyor.server.queue import notify

    mark = notifier.mark()
    for job_id in range(notify.HISTORY + 1):
        await notifier.tick([_job(job_id, "gpu")])
    assert await asyncio.wait_for(notifier.wait_for_change(mark, 5.0, UNTAGGED), 1.0) is not None


async def test_a_new_job_wakes_one_waiter_and_a_claim_that_found_nothing_relays_it_once(notifier: QueueNotifier) -> None:
    # issue 24: two waiters woken per job cost a second claim for every job; now the second
    # chance is a relay, taken only when the first claim found nothing, and once per tick
    gpu = Appetite(frozenset({"gpu"}), run_untagged=False, protected_only=False)
    mark = notifier.mark()
    waiters = [asyncio.create_task(notifier.wait_for_change(mark, 5.0, UNTAGGED)) for _ in range(3)]
    gpu_waiter = asyncio.create_task(notifier.wait_for_change(mark, 5.0, gpu))
    await asyncio.sleep(0.1)
    await notifier.tick([_job(1)])
    await asyncio.sleep(0.1)
    assert [w.done() for w in waiters] == [True, False, False] and not gpu_waiter.done()  # the longest waiting
    version = waiters[0].result()
    notifier.relay(version, UNTAGGED)  # its claim found nothing
    await asyncio.sleep(0.05)
    assert [w.done() for w in waiters] == [True, True, False] and not gpu_waiter.done()
    notifier.relay(version, UNTAGGED)  # the relayed one found nothing either: the chain ends
    notifier.relay("unknown", UNTAGGED)
    await asyncio.sleep(0.05)
    assert [w.done() for w in waiters] == [True, True, False] and not gpu_waiter.done()
    await notifier.close()
    assert await waiters[2] is None and await gpu_waiter is None


async def test_a_job_this_process_claimed_sends_no_returning_runner_to_a_claim(notifier: QueueNotifier) -> None:
    """Issue 24: a runner back from its job, every later job taken by this process's requests,
    skips the claim that would find nothing; anything not known taken still counts."""
    await notifier.tick([_job(0, "gpu")])
    seen = await notifier.version()
    mark = notifier.mark()
    await notifier.tick([_job(1), _job(2)])
    notifier.claimed(1)
    assert notifier.missed(seen, UNTAGGED)  # job 2 may still be pending
    notifier.claimed(2)
    assert not notifier.missed(seen, UNTAGGED)
    assert await notifier.wait_for_change(mark, 0.2, UNTAGGED) is None  # nothing left to wake for
    await notifier.tick([_job(1)])  # job 1 came back (requeued): its new tick counts
    assert notifier.missed(seen, UNTAGGED)


async def test_a_job_claimed_before_its_tick_arrived_still_counts(notifier: QueueNotifier) -> None:
    """A claim can win a job whose tick (from another process) this one has not observed yet:
    that tick must still count, a claim too many and never a pending job skipped."""
    await notifier.tick([_job(0, "gpu")])
    seen = await notifier.version()
    notifier.claimed(7)
    await notifier.tick([_job(7)])
    assert notifier.missed(seen, UNTAGGED)
