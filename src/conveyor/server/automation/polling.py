"""Polling repositories that cannot send webhooks: ``git ls-remote`` per project every
``poll_interval`` seconds, a push pipeline for every head that moved.

Safe with many server processes and no leader: ``claim_due_polls`` takes due projects ``FOR
UPDATE SKIP LOCKED`` and moves their ``next_poll_at`` one interval on before committing, so
one process polls a project at a time. The first poll only records the heads it finds; a new or
moved branch or tag afterwards becomes a push (``PushReceiver.start``, which deduplicates against
webhooks for the same ref+sha); a deleted one is forgotten.
"""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.server import periodic
from conveyor.server.automation.forges import ZERO_SHA, Push
from conveyor.server.automation.pushes import PushReceiver
from conveyor.server.db import queries
from conveyor.server.sources import GitSources

log = structlog.get_logger(__name__)


class Poller:
    def __init__(self, engine: AsyncEngine, sources: GitSources, receiver: PushReceiver, interval: float) -> None:
        self._engine = engine
        self._sources = sources
        self._receiver = receiver
        self._interval = interval

    async def configure(self, project_id: int, poll_interval: int) -> None:
        async with self._engine.begin() as conn:
            await queries.sources.configure(conn, project_id, {"poll_interval": max(0, poll_interval)})

    async def run(self) -> None:
        await periodic.every(self._interval, self.poll_due, log, "poll pass failed")

    async def poll_due(self, limit: int = 10) -> list[int]:
        """One pass over the projects due; returns the pipelines created."""
        async with self._engine.begin() as conn:
            due = await queries.sources.claim_due_polls(conn, limit)
        created: list[int] = []
        for row in due:
            try:
                created += await self._poll(row["project_id"], row["heads"])
            except Exception as exc:  # one unreachable repository does not stop the others
                log.warning("poll failed", project=row["project_id"], error=str(exc))
        return created

    async def _poll(self, project_id: int, known: dict[str, str] | None) -> list[int]:
        async with self._engine.connect() as conn:
            project = await queries.projects.get(conn, project_id)
        if project is None:
            return []
        heads = await self._sources.ls_remote(project["source"])
        created: list[int] = []
        if known is not None:
            for ref, sha in heads.items():
                if known.get(ref) == sha:
                    continue
                tag = ref.startswith("refs/tags/")
                name = ref.removeprefix("refs/tags/") if tag else ref.removeprefix("refs/heads/")
                push = Push(ref=name, tag=tag, before=known.get(ref, ZERO_SHA), after=sha, deleted=False,
                            delivery_id=None, message="")
                try:
                    outcome = await self._receiver.start(project, "poll", push)
                except Exception as exc:
                    log.warning("polled pipeline not created", project=project_id, ref=ref, error=str(exc))
                    continue
                if outcome.created is not None:  # the receiver woke the dispatcher
                    created.append(outcome.created.id)
        async with self._engine.begin() as conn:
            await queries.sources.set_heads(conn, project_id, heads)
        return created
