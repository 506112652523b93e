"""Hand pending jobs to runners: long polling, tag and protection matching, fair claims.

One request (``request_job``), step by step:
1. Read the queue version *before* claiming, so a job enqueued during the claim changes the
   version the runner takes away and is not missed.
2. A paused runner gets 204 at once. A runner echoing a version after which no job it may take
   became pending (``QueueNotifier.missed``) has seen every change that matters to it since its
   last empty answer: skip the claim (no database query).
3. Otherwise claim: one short transaction, ``FOR UPDATE SKIP LOCKED`` per project in fair order.
4. Nothing to take: hold the request up to ``long_poll_timeout`` seconds; when a job this runner
   may take becomes pending (anywhere, or already between the claim and the wait), claim again at once and answer 201 in the same request,
   rather than answering 204 and waiting for the runner's next poll as GitLab's Workhorse does.
   A woken claim that finds nothing relays the wake to one other waiting request (``QueueNotifier.relay``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from conveyor.ciconfig.expansion import expand_existing
from conveyor.protocol import JobPayload, JobStatus
from conveyor.server import auth
from conveyor.server.db import queries, single_statements, transaction
from conveyor.server.queue import payload
from conveyor.server.queue.jobs import AUTHENTICATED_COLUMNS, TokenCache
from conveyor.server.queue.notify import Appetite, QueueNotifier
from conveyor.server.queue.progress import advance
from conveyor.server.sources import GitSources
from conveyor.server.variables import JobVariables
from conveyor.server.variables.assembly import PipelineFacts

log = structlog.get_logger(__name__)

if TYPE_CHECKING:
    from conveyor.server.accounts import RunnerContext


@dataclass(frozen=True)
class DispatchResult:
    job: JobPayload | None
    version: str


# the claimed row, the jobs it takes artifacts from ({id, name, filename, size, dotenv_variables};
# None: it failed at start), and what that failure enqueued
Claimed = tuple[RowMapping, "list[Mapping[str, Any]] | None", "list[queries.jobs.Queued]"]


async def claim(
    engine: AsyncEngine, claimant: queries.jobs.Claimant, token_hash: str, reads: AsyncEngine | None = None
) -> Claimed | None:
    """The next job for ``claimant`` and its dependencies' artifacts (None: the job failed at
    start with ``missing_dependency_failure``, and what that enqueued).

    The claim is one statement, committed on its own (``reads``, the engine in autocommit: no
    BEGIN and COMMIT round trips), run again when PostgreSQL aborts it as a deadlock victim
    (``db.transaction``): it locks a pending job, then its pipeline (to start it); a cancel
    locks the pipeline, then its jobs (the project's lock order). Seen in CI as a 500 on a job
    request under concurrent cancels. The statement reads the job's dependencies too; other
    pipelines' (``needs:pipeline``, ``needs:project``) are read after it, and only a missing one
    opens a transaction (to fail the job, which is this runner's by then)."""
    reads = reads or single_statements(engine)

    async def take(conn: AsyncConnection) -> RowMapping | None:
        return await queries.jobs.claim(conn, claimant, token_hash)

    job = await transaction(reads, take)
    if job is None:
        return None
    dependencies: list[Mapping[str, Any]] = list(job["dependencies"])  # read by the claim statement itself
    cross_needs = job["spec"].get("cross_needs") or []
    if cross_needs:
        async with reads.connect() as conn:
            for cross in cross_needs:
                found = await _cross_pipeline_artifacts(conn, job, cross)
                if not found and cross.get("artifacts", True):
                    # GitLab: a needed job of another pipeline that is missing, unsuccessful or
                    # without artifacts fails the job at start (Ci::BuildDependencies#valid?)
                    return job, None, await transaction(engine, lambda conn: _fail_at_start(conn, job, token_hash))
                dependencies += found
    return job, dependencies, []


async def _fail_at_start(conn: AsyncConnection, job: RowMapping, token_hash: str) -> list[queries.jobs.Queued]:
    """Fail a job just claimed for a missing dependency, if nothing (a cancel) ended it since."""
    await queries.pipelines.lock(conn, job["pipeline_id"])  # lock order: pipeline, then its jobs
    locked = await queries.jobs.lock(conn, job["id"])
    if locked is None or locked["status"] != JobStatus.RUNNING or locked["token_hash"] != token_hash:
        return []
    await queries.jobs.finish(conn, job["id"], JobStatus.FAILED, failure_reason="missing_dependency_failure")
    return await advance(conn, job["pipeline_id"])


async def _cross_pipeline_artifacts(conn: AsyncConnection, job: RowMapping, need: dict[str, Any]) -> list[RowMapping]:
    """``needs:pipeline:job`` (a pipeline of the same project, e.g. the parent's, never the
    job's own: GitLab drops that one) and ``needs:project`` (a project's latest successful job
    on ``ref``): the artifacts of the latest successful job of that name; variables in the
    values are the pipeline's and the job's (``$PARENT_PIPELINE_ID``, ``$CI_COMMIT_REF_NAME``)."""
    if not need.get("artifacts", True):
        return []
    variables = {
        "CI_PIPELINE_ID": str(job["pipeline_id"]), "CI_COMMIT_REF_NAME": job["pipeline_ref"],
        "CI_PROJECT_PATH": job["project_name"], **(job["pipeline_variables"] or {}), **job["spec"].get("variables", {}),
    }  # fmt: skip
    if "pipeline" in need:
        pipeline = expand_existing(str(need["pipeline"]), variables)
        if not pipeline.isdigit() or int(pipeline) == job["pipeline_id"]:
            return []
        row = await queries.pipelines.get(conn, int(pipeline))
        if row is None or row["project_id"] != job["project_id"]:
            return []
        return await queries.artifacts.latest_successful(conn, need["job"], pipeline_id=int(pipeline))
    project = expand_existing(str(need["project"]), variables)
    ref = expand_existing(str(need["ref"]), variables)
    return await queries.artifacts.latest_successful(conn, need["job"], project=project, ref=ref)


class Dispatcher:
    def __init__(
        self,
        engine: AsyncEngine,
        notifier: QueueNotifier,
        sources: GitSources,
        *,
        server_url: str,
        default_timeout: int,
        long_poll_timeout: float,
        job_variables: JobVariables | None = None,
        tokens: TokenCache | None = None,
    ) -> None:
        self._engine = engine
        self._tokens = tokens  # a claimed job's token is checked here first: its PATCHes need no lookup
        self._reads = single_statements(engine)
        self._notifier = notifier
        self._sources = sources
        self._server_url = server_url
        self._default_timeout = default_timeout
        self._long_poll_timeout = long_poll_timeout
        self._job_variables = job_variables

    async def tick(self, queued: Sequence[queries.jobs.Queued] | None = None) -> None:
        """Jobs became pending (all of them in ``queued``; None: unknown, wake every held request)."""
        await self._notifier.tick(queued)

    async def request_job(self, runner: RunnerContext, last_update: str | None, *, hold: bool = True) -> DispatchResult:
        """A job for ``runner``, waiting up to the long-poll timeout when ``hold`` and nothing is pending."""
        deadline = time.monotonic() + (self._long_poll_timeout if hold else 0)
        version = await self._notifier.version()
        if runner.paused:
            return DispatchResult(None, version)
        appetite = Appetite(frozenset(runner.tag_list), runner.run_untagged, runner.access_level == "ref_protected")
        mark = self._notifier.mark()
        if self._notifier.missed(last_update, appetite):
            job = await self._claim(runner)
            if job is not None:
                return DispatchResult(job, version)
        while (remaining := deadline - time.monotonic()) > 0:
            changed = await self._notifier.wait_for_change(mark, remaining, appetite)
            if changed is None:
                break
            version, mark = changed, self._notifier.mark()
            job = await self._claim(runner)
            if job is not None:
                return DispatchResult(job, version)
            self._notifier.relay(changed, appetite)  # taken already, or not ours: one other waiter tries
        return DispatchResult(None, version)

    async def _claim(self, runner: RunnerContext) -> JobPayload | None:
        claimant = queries.jobs.Claimant(
            runner_id=runner.id,
            runner_manager_id=runner.manager_id,
            tags=list(runner.tag_list),
            run_untagged=runner.run_untagged,
            protected_only=runner.access_level == "ref_protected",
            scoped=runner.runner_type != "instance_type",
        )
        while True:
            token = auth.generate(auth.JOB_PREFIX)
            generation = self._tokens.generation if self._tokens is not None else 0
            claimed = await claim(self._engine, claimant, auth.digest(token), self._reads)
            if claimed is None:
                return None
            job, dependencies, enqueued = claimed
            self._notifier.claimed(job["id"])  # its tick sends no other returning runner to a claim
            if dependencies is not None:
                if self._tokens is not None:  # not stored if a revocation came in meanwhile
                    self._tokens.put({column: job[column] for column in AUTHENTICATED_COLUMNS}, generation)
                facts = await self._job_variables.for_job(job) if self._job_variables else None
                return self._payload(job, token, dependencies, runner, facts)
            log.info("job_missing_dependency", job_id=job["id"])
            if enqueued:  # the failure moved its pipeline on (on_failure jobs...)
                await self._notifier.tick(enqueued)

    def _payload(
        self, job: RowMapping, token: str, dependencies: Sequence[Mapping[str, Any]], runner: RunnerContext | None = None,
        facts: PipelineFacts | None = None,
    ) -> JobPayload:
        project = {
            "id": job["project_id"],
            "name": job["project_name"],
            "source": job["project_source"],
            "default_branch": job["project_default_branch"],
            "protected_refs": job["project_protected_refs"],
        }
        pipeline = {"id": job["pipeline_id"]} | {
            key: job[f"pipeline_{key}"]
            for key in ("ref", "sha", "variables", "created_at", "iid", "source", "before_sha", "tag", "commit", "user")
        }
        return payload.build(
            job,
            project,
            pipeline,
            dependencies=dependencies,
            token=token,
            repo_url=self._sources.clone_url(project["source"]),
            server_url=self._server_url,
            default_timeout=self._default_timeout,
            facts=facts,
            runner=None if runner is None else {"id": runner.id, "description": runner.description, "tag_list": runner.tag_list},
        )
