"""``resource_group``: at most one job of a group holds it at a time, per project (GitLab's
``Ci::ResourceGroups::AssignResourceFromResourceGroupService``, process mode ``unordered``).

A job whose turn comes waits in ``waiting_for_resource``. The group is handed over by
``hand_over``: under the group's row lock, when its holder no longer holds it (ended, or never
set), the oldest waiting job becomes ``pending`` and the new holder. Two callers:

1. ``advance`` (inline, holding one pipeline's lock): it takes the group's lock and a waiting
   job's other pipeline only with ``SKIP LOCKED``, so it never waits while holding a pipeline;
   when either is busy it leaves the hand-over to step 2.
2. The scheduler's pass (``pass_over``): for each group with waiting jobs, in a transaction of its
   own, it locks the next waiting job's pipeline first (the project's lock order: pipeline, then
   the rest) and hands over. This also catches hand-overs that step 1 skipped because the
   holder's end was not yet committed when it looked.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from conveyor.protocol import JobStatus
from conveyor.server.db import queries
from conveyor.server.queue import states


async def hand_over(conn: AsyncConnection, project_id: int, key: str, *, held: int) -> list[queries.jobs.Queued]:
    """Give the group to its oldest waiting job if it is free; returns the job enqueued, if any.

    ``held`` is the pipeline the caller has locked. A waiting job of another pipeline is enqueued
    only if that pipeline can be locked without waiting; its status is then recomputed here, and
    the caller recomputes ``held``'s.
    """
    group = await queries.resource_groups.lock(conn, project_id, key, wait=False)
    if group is None or await queries.resource_groups.busy(conn, group):
        return []
    candidate = await queries.resource_groups.oldest_waiting(conn, project_id, key)
    if candidate is None:
        return []
    other = candidate["pipeline_id"] != held
    if other and await queries.pipelines.lock_unless_busy(conn, candidate["pipeline_id"]) is None:
        return []
    enqueued = await queries.jobs.enqueue_from(conn, [candidate["id"]], [JobStatus.WAITING_FOR_RESOURCE])
    if enqueued:
        await queries.resource_groups.set_holder(conn, project_id, key, candidate["id"])
        if other:
            await states.refresh_status(conn, candidate["pipeline_id"])
    return enqueued


async def pass_over(engine: AsyncEngine, groups: Sequence[tuple[int, str]]) -> list[queries.jobs.Queued]:
    """Hand over every free group of ``groups`` (``queries.resource_groups.with_waiting_jobs``,
    read by the caller); one short transaction per group."""
    enqueued: list[queries.jobs.Queued] = []
    for project_id, key in groups:
        async with engine.begin() as conn:
            candidate = await queries.resource_groups.oldest_waiting(conn, project_id, key)
            if candidate is None:
                continue
            if await queries.pipelines.lock(conn, candidate["pipeline_id"]) is None:
                continue
            queued = await hand_over(conn, project_id, key, held=candidate["pipeline_id"])
            if queued:
                await states.refresh_status(conn, candidate["pipeline_id"])
            enqueued += queued
    return enqueued
