"""Hand pending jobs to runners: one short transaction per claim, ``FOR UPDATE SKIP LOCKED``.

The queue version in Redis (GitLab's ``runner:build_queue`` value) changes whenever a job becomes
pending. A runner echoing the current version back has seen every change since, so it gets 204
without a database query. The version is read *before* claiming, so a job enqueued during the
claim changes the version the runner takes away and is not missed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.protocol import JobPayload
from conveyor.server import auth, keys
from conveyor.server.db import queries
from conveyor.server.queue import payload
from conveyor.server.sources import GitSources

CLAIM_ATTEMPTS = 3


@dataclass(frozen=True)
class DispatchResult:
    job: JobPayload | None
    version: str


class Dispatcher:
    def __init__(
        self, engine: AsyncEngine, redis: Redis, sources: GitSources, *, server_url: str, default_timeout: int
    ) -> None:
        self._engine = engine
        self._redis = redis
        self._sources = sources
        self._server_url = server_url
        self._default_timeout = default_timeout

    async def version(self) -> str:
        value = await self._redis.get(keys.queue_version())
        if value is None:
            await self._redis.set(keys.queue_version(), secrets.token_hex(16), nx=True)
            value = await self._redis.get(keys.queue_version())
        return value.decode() if isinstance(value, bytes) else str(value)

    async def tick(self) -> None:
        """Jobs became pending: every runner's next request must look at the database."""
        await self._redis.set(keys.queue_version(), secrets.token_hex(16))

    async def request_job(self, runner: RowMapping, last_update: str | None) -> DispatchResult:
        version = await self.version()
        if last_update == version:
            return DispatchResult(None, version)
        for _ in range(CLAIM_ATTEMPTS):
            token = auth.generate(auth.JOB_PREFIX)
            async with self._engine.begin() as conn:
                job = await queries.jobs.claim(conn, runner["id"], auth.digest(token))
                if job is None:
                    continue
                project = await queries.projects.get(conn, job["project_id"])
                pipeline = await queries.pipelines.get(conn, job["pipeline_id"])
                if pipeline["status"] in ("created", "pending"):
                    await queries.pipelines.set_status(conn, pipeline["id"], "running")
            return DispatchResult(self._payload(job, project, pipeline, token), version)
        return DispatchResult(None, version)

    def _payload(self, job: RowMapping, project: RowMapping, pipeline: RowMapping, token: str) -> JobPayload:
        return payload.build(
            job,
            project,
            pipeline,
            token=token,
            repo_url=self._sources.clone_url(project["source"]),
            server_url=self._server_url,
            default_timeout=self._default_timeout,
        )
