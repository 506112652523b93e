"""The background passes' one question a beat (``periodic.Pulse``): which of them has work.

Each answer is an ``EXISTS`` on the partial index its pass reads, and a superset of what that pass
looks for, so a pass told "nothing" would have found nothing: the scheduler (a delayed job due,
a job waiting for a resource group), the bridges (a bridge pending, running or manual; a
downstream pipeline still active, which a reopened bridge or an orphaned child needs) and hook
deliveries (one due, its hook disabled or not).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db.queries.bridges import IS_ACTIVE_BRIDGE, IS_ACTIVE_DOWNSTREAM

PASSES = ("scheduler", "bridges", "hooks")


# literals, not bound parameters: a prepared statement's generic plan cannot prove a partial
# index's predicate from a parameter, and would scan the table instead
_DUE = sa.text(f"""
SELECT EXISTS (SELECT FROM jobs WHERE status = 'scheduled' AND scheduled_at <= now())  -- ix_jobs_scheduled_at
       OR EXISTS (SELECT FROM jobs WHERE status = 'waiting_for_resource')  -- ix_jobs_waiting_for_resource
       AS scheduler,
       EXISTS (SELECT FROM jobs WHERE {IS_ACTIVE_BRIDGE.text})  -- ix_jobs_active_bridges
       OR EXISTS (SELECT FROM pipelines WHERE {IS_ACTIVE_DOWNSTREAM.text})  -- ix_pipelines_active_downstream
       AS bridges,
       EXISTS (SELECT FROM hook_deliveries WHERE next_attempt_at <= now())  -- ix_hook_deliveries_next_attempt_at
       AS hooks
""")


async def due(conn: AsyncConnection) -> dict[str, bool]:
    """{pass: whether it has work}, for ``PASSES``, in one statement."""
    row = (await conn.execute(_DUE)).mappings().one()
    return {name: bool(row[name]) for name in PASSES}
