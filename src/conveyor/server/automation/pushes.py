"""Push webhooks in: verify, deduplicate, and start the pipeline of the pushed commit.

One delivery, step by step:
1. Which forge sent it, and its secret (``forges.verify``): 401 and nothing else when wrong.
2. Not a push (ping, issues...): answered, ignored. A deleted ref, ``[ci skip]``: ignored.
3. One short transaction records the push; a delivery id or ref+sha seen before records
   nothing, and the pipeline of the first is the answer (one pipeline per push, however often
   a forge redelivers, and whether the webhook or the poller saw it first).
4. The pipeline is created from the pushed commit (the project's mirror is fetched, with git's
   timeout and the credentials in the project's URL): ``CI_PIPELINE_SOURCE=push``, the push's
   ``before`` as ``CI_COMMIT_BEFORE_SHA`` and ``rules:changes`` over ``before..after``.
   If that fails the record is dropped, so a redelivery tries again.
5. A forge gives up on a webhook after about ten seconds (GitHub): when creating the pipeline
   takes longer than ``answer_within`` (a large repository to fetch), the answer is 202
   ``accepted`` and the creation goes on in the background.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import structlog

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.server.automation import forges
from conveyor.server.db import queries
from conveyor.server.queue.pipelines import CreatedPipeline, Origin, Pipelines
from conveyor.server.variables import SecretBox

log = structlog.get_logger(__name__)
SKIP_MARKERS = ("[ci skip]", "[skip ci]")


@dataclass(frozen=True)
class PushOutcome:
    status: str  # created, accepted (still being created), duplicate, ignored
    reason: str = ""
    pipeline_id: int | None = None
    created: CreatedPipeline | None = None


class PushReceiver:
    def __init__(
        self,
        engine: AsyncEngine,
        pipelines: Pipelines,
        box: SecretBox,
        on_created: Callable[[CreatedPipeline], Awaitable[None]] | None = None,
        answer_within: float = 8.0,
    ) -> None:
        self._engine = engine
        self._pipelines = pipelines
        self._box = box
        self._on_created = on_created  # wakes the dispatcher
        self._answer_within = answer_within
        self._background: set[asyncio.Task[CreatedPipeline]] = set()

    async def aclose(self) -> None:
        """Stop creations still running in the background (their pushes are forgotten, so the
        forge's redelivery or the next poll starts them again)."""
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    async def set_secret(self, project_id: int, secret: str | None) -> None:
        async with self._engine.begin() as conn:
            await queries.sources.configure(
                conn, project_id, {"webhook_secret": self._box.encrypt(secret) if secret else None}
            )

    async def describe(self, project_id: int) -> dict[str, object]:
        """What is configured (never the secret itself)."""
        async with self._engine.connect() as conn:
            row = await queries.sources.get(conn, project_id)
        return {
            "webhook_secret_set": bool(row and row["webhook_secret"]),
            "poll_interval": row["poll_interval"] if row else 0,
        }

    async def receive(self, project: RowMapping, headers: Mapping[str, str], body: bytes) -> PushOutcome:
        forge = forges.forge_of(headers)
        async with self._engine.connect() as conn:
            source = await queries.sources.get(conn, project["id"])
        stored = source["webhook_secret"] if source else None
        forges.verify(forge or "gitlab", headers, body, self._box.decrypt(stored) if stored else None)
        if forge is None or forges.event_of(forge, headers) not in forges.PUSH_EVENTS[forge]:
            return PushOutcome("ignored", "not a push event")
        push = forges.parse(forge, headers, body)
        if push.deleted:
            return PushOutcome("ignored", "ref deleted")
        if any(marker in push.message.lower() for marker in SKIP_MARKERS):
            return PushOutcome("ignored", "[ci skip]")
        return await self.start(project, forge, push, background_after=self._answer_within)

    async def start(
        self, project: RowMapping, forge: str, push: forges.Push, *, background_after: float | None = None
    ) -> PushOutcome:
        """Record ``push`` once and create its pipeline (also the poller's way in); after
        ``background_after`` seconds (None: never) the creation goes on in the background."""
        full_ref = ("refs/tags/" if push.tag else "refs/heads/") + push.ref  # a tag and a branch may share a name
        values = {"forge": forge, "delivery_id": push.delivery_id, "ref": full_ref,
                  "before_sha": push.before, "sha": push.after}
        async with self._engine.begin() as conn:
            push_id = await queries.sources.record_push(conn, project["id"], values)
            if push_id is None:
                earlier = await queries.sources.push_pipeline(conn, project["id"], push.delivery_id, full_ref, push.after)
        if push_id is None:
            return PushOutcome("duplicate", "this push was seen before", earlier)
        task = asyncio.create_task(self._create(project, push, push_id), name=f"push-{push_id}")
        done, _ = await asyncio.wait({task}, timeout=background_after)
        if task not in done:
            self._background.add(task)
            task.add_done_callback(self._finished)
            return PushOutcome("accepted", "the pipeline is being created")
        created = task.result()  # a failure is the forge's answer (400 and GitLab's words)
        return PushOutcome("created", pipeline_id=created.id, created=created)

    async def _create(self, project: RowMapping, push: forges.Push, push_id: int) -> CreatedPipeline:
        origin = Origin(source="push", before_sha=push.before, sha=push.after, tag=push.tag)
        try:
            created = await self._pipelines.create(project, push.ref, {}, origin)
        except BaseException:
            async with self._engine.begin() as conn:
                await queries.sources.forget_push(conn, push_id)
            raise
        async with self._engine.begin() as conn:
            await queries.sources.link_push(conn, push_id, created.id)
        if self._on_created is not None:
            await self._on_created(created)
        return created

    def _finished(self, task: asyncio.Task[CreatedPipeline]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("pushed pipeline not created", error=str(task.exception()))
