"""Bridge jobs (``trigger:``): create their downstream pipelines and follow them.

A bridge never reaches a runner: when its turn comes it becomes ``pending`` outside the runner
queue, and one background task per server process (``run``) does, every ``interval`` seconds,
in short transactions (the pipeline row first, then the job, as everywhere):

1. each pending bridge is claimed (``running``), its downstream pipeline created outside any
   transaction (git, includes), then the bridge ends: ``success`` at once without ``strategy``,
   ``failed`` with GitLab's ``failure_reason`` when the downstream could not be created, or it
   stays ``running`` with ``strategy: depend``/``mirror``;
2. a running bridge whose latest downstream pipeline finished takes its status (``depend``: a
   skipped downstream fails the bridge; ``mirror``: ``skipped`` and ``manual`` are mirrored);
3. a finished ``strategy`` bridge whose downstream runs again (a job of it was retried) runs
   again too, and the jobs its end had skipped wait for it again (GitLab's
   ``reset_source_bridge!``);
4. a child pipeline whose bridge was canceled (its parent was) is canceled too; multi-project
   downstreams are not (GitLab's ``CancelPipelineService``). Retrying a bridge makes a new
   attempt, which creates a new downstream pipeline.

Child pipelines (``trigger:include``) run in the parent's project, ref and commit with
``CI_PIPELINE_SOURCE=parent_pipeline``; multi-project ones (``trigger:project``) run the target
project's own config at ``branch`` (its default branch) with ``pipeline``. The bridge's YAML
variables (``forward:yaml_variables``, default true) and the parent's pipeline variables
(``forward:pipeline_variables``) are expanded with the bridge's variables and become the
downstream's pipeline variables.
"""

from __future__ import annotations

import asyncio
import io
import zipfile
from dataclasses import dataclass
from typing import Any

import structlog
import yaml
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from conveyor import ciconfig
from conveyor.ciconfig.expansion import expand_all, expand_existing
from conveyor.protocol import JobSpec, JobStatus
from conveyor.server import periodic
from conveyor.server.db import queries, transaction
from conveyor.server.queue import cancel, predefined, retry
from conveyor.server.queue.notify import QueueNotifier
from conveyor.server.queue.pipelines import Facts, Pipelines
from conveyor.server.queue.progress import advance
from conveyor.server.storage import ObjectStore

log = structlog.get_logger(__name__)

MAX_NESTED_CHILDREN = 2  # GitLab: a bridge in a grandchild pipeline fails
MAX_ARTIFACT_INCLUDE_BYTES = 5 * 1024 * 1024  # GitLab's max artifacts content include size
FINISHED = ("success", "failed", "canceled", "skipped")
STRANDED_AFTER = 600.0  # seconds a bridge may be creating its downstream before it is failed


@dataclass(frozen=True)
class Failure(Exception):
    """The downstream pipeline could not be created: GitLab's failure reason and why."""

    reason: str
    detail: str = ""


class Bridges:
    def __init__(
        self,
        engine: AsyncEngine,
        pipelines: Pipelines,
        objects: ObjectStore,
        notifier: QueueNotifier,
        *,
        server_url: str,
        interval: float,
        pulse: periodic.Pulse | None = None,
    ) -> None:
        self._engine, self._pipelines, self._objects = engine, pipelines, objects
        self._notifier, self._server_url, self._interval = notifier, server_url, interval
        self._pulse = pulse  # passes only when it says a bridge or a downstream pipeline is active

    async def run(self) -> None:
        await periodic.every(self._interval, self.tick, log, "bridges_pass_failed", pulse=self._pulse, name="bridges")

    async def tick(self) -> int:
        """One pass; safe from any number of server processes. Returns the bridges moved."""
        async with self._engine.connect() as conn:
            pending = await queries.bridges.pending(conn)
            following = await queries.bridges.following(conn)
            orphans = await queries.bridges.orphaned_children(conn)
            reopened = await queries.bridges.reopened(conn)
            stranded = await queries.bridges.stranded(conn, STRANDED_AFTER)
        enqueued: list[queries.jobs.Queued] = []
        moved = 0
        for bridge in pending:
            done, queued = await self._trigger(bridge["id"], bridge["pipeline_id"])
            moved, enqueued = moved + done, enqueued + queued
        for row in following:
            status = _followed_status(row["spec"], row["downstream_status"])
            if status is not None:
                enqueued += await transaction(self._engine, lambda conn, r=row, s=status: self._end(conn, r, s))
                moved += 1
        for row in stranded:  # the process creating its downstream died: GitLab's reason
            failed = dict(row) | {"spec": {"trigger": {"strategy": "depend"}}}
            enqueued += await transaction(self._engine, lambda conn, r=failed: self._end(conn, r, "failed",
                                                                                        "downstream_pipeline_creation_failed"))
            moved += 1
        for row in reopened:
            enqueued += await transaction(self._engine, lambda conn, r=row: self._reopen(conn, r))
            moved += 1
        for child in orphans:
            enqueued += await transaction(self._engine, lambda conn, c=child: cancel.cancel_pipeline_locked(conn, c))
        if enqueued:
            await self._notifier.tick(enqueued)
        return moved

    async def _trigger(self, bridge_id: int, pipeline_id: int) -> tuple[int, list[queries.jobs.Queued]]:
        async with self._engine.begin() as conn:
            if await queries.pipelines.lock_unless_busy(conn, pipeline_id) is None:
                return 0, []
            job = await queries.bridges.start(conn, bridge_id)
            if job is None:
                return 0, []
            await advance(conn, pipeline_id)
            parent = await queries.pipelines.get(conn, pipeline_id)
            project = await queries.projects.get(conn, int(job["project_id"]))
        assert parent is not None and project is not None
        spec = JobSpec.model_validate(job["spec"])
        created, failure = None, None
        try:
            created = await self._downstream(job, spec, parent, project)
        except Failure as exc:
            failure = exc
        except Exception as exc:  # noqa: BLE001 - any other error is a failed creation, logged
            log.exception("downstream_pipeline_failed", bridge_id=bridge_id)
            failure = Failure("downstream_pipeline_creation_failed", str(exc))
        if failure is not None:
            log.info("downstream_pipeline_not_created", bridge_id=bridge_id, reason=failure.reason, detail=failure.detail)

        async def finish(conn: AsyncConnection) -> list[queries.jobs.Queued]:
            queued = list(created.enqueued) if created else []
            await queries.pipelines.lock(conn, pipeline_id)
            current = await queries.jobs.lock(conn, bridge_id)
            if current is None or current["status"] != JobStatus.RUNNING:
                if created is not None:  # canceled meanwhile: so is its child
                    queued += await cancel.cancel_pipeline_locked(conn, created.id)
                return queued
            if failure is not None:
                await queries.jobs.finish(conn, bridge_id, JobStatus.FAILED, failure_reason=failure.reason)
                if failure.detail:
                    await queries.bridges.set_errors(conn, bridge_id, failure.detail.split("\n"))
            elif not (spec.trigger or {}).get("strategy"):
                await queries.jobs.finish(conn, bridge_id, JobStatus.SUCCESS)
            return queued + await advance(conn, pipeline_id)

        return 1, await transaction(self._engine, finish)

    async def _downstream(self, job: RowMapping, spec: JobSpec, parent: RowMapping, project: RowMapping) -> Any:
        trigger = spec.trigger or {}
        dotenv = await self._dotenv(job, spec)
        variables = self._forwarded(job, spec, parent, project, dotenv)
        if "include" in trigger:
            async with self._engine.connect() as conn:
                depth = await queries.bridges.depth(conn, int(parent["id"]))
            if depth > MAX_NESTED_CHILDREN:
                raise Failure("reached_max_descendant_pipelines_depth")
            text = yaml.safe_dump({"include": trigger["include"]}, sort_keys=False)
            facts = Facts(source="parent_pipeline", before_sha=parent["before_sha"], tag=parent["tag"],
                          commit=dict(parent["commit"] or {}), user=parent["user"],
                          parent_pipeline_id=parent["id"], source_job_id=job["id"])  # fmt: skip
            reader = self._artifact_reader(int(parent["id"]))
            return await self._create(project, parent["ref"], parent["sha"], text, variables, facts, reader)
        every = self._bridge_variables(job, spec, parent, project, dotenv)
        path = expand_existing(str(trigger["project"]), every)
        async with self._engine.connect() as conn:
            target = await queries.projects.get(conn, path)
        if target is None:
            raise Failure("downstream_bridge_project_not_found")
        if target["id"] == project["id"]:
            raise Failure("invalid_bridge_trigger")
        sources = self._pipelines.sources
        ref = expand_existing(str(trigger.get("branch") or ""), every) or target["default_branch"] or await sources.default_branch(target["source"])
        sha = await sources.resolve(target["source"], ref)
        if not sha:
            raise Failure("downstream_pipeline_creation_failed", "Reference not found")
        text = await sources.read_file(target["source"], sha, ".gitlab-ci.yml")
        if text is None:
            raise Failure("downstream_pipeline_creation_failed", "Missing .gitlab-ci.yml")
        facts = await self._pipelines.facts(target, ref, sha, source="pipeline", source_job_id=job["id"])
        return await self._create(target, ref, sha, text, variables, facts, None, trigger.get("inputs"))

    async def _create(self, project: RowMapping, ref: str, sha: str, text: str, variables: dict[str, str],
                      facts: Facts, reader: Any, inputs: dict[str, Any] | None = None) -> Any:  # fmt: skip
        try:
            return await self._pipelines.create_downstream(project, ref, sha, text, variables, facts, reader, inputs)
        except ciconfig.ConfigError as exc:
            raise Failure("downstream_pipeline_creation_failed", "\n".join(str(i) for i in exc.issues)) from exc

    async def _dotenv(self, job: RowMapping, spec: JobSpec) -> dict[str, str]:
        """The dotenv variables of the jobs the bridge depends on (earlier stages or its needs)."""
        if spec.dependencies == [] or (job["stage_idx"] == 0 and not spec.needs):
            return {}
        async with self._engine.connect() as conn:
            found = await queries.artifacts.for_dependencies(conn, job["pipeline_id"], job["stage_idx"], spec.needs, spec.dependencies)
        dotenv: dict[str, str] = {}
        for row in found:
            dotenv.update(row["dotenv_variables"] or {})
        return dotenv

    def _bridge_variables(
        self, job: RowMapping, spec: JobSpec, parent: RowMapping, project: RowMapping, dotenv: dict[str, str]
    ) -> dict[str, str]:
        """The bridge's variables, expanded (no job-only ones such as CI_JOB_TOKEN): its YAML
        ones can read its dependencies' dotenv variables (``VERSION: $BUILD_VERSION``)."""
        values = {v.key: v.value for v in predefined.job_variables(
            job, project, parent, spec, token="", repo_url="", server_url=self._server_url, timeout=0,
        ) if v.public}  # fmt: skip
        # the YAML variables last: what goes down is their text, expanded with the others
        every = {**values, **dotenv, **{k: str(v) for k, v in (parent["variables"] or {}).items()}, **spec.variables}
        return expand_all(every, frozenset(spec.raw_variables))

    def _forwarded(
        self, job: RowMapping, spec: JobSpec, parent: RowMapping, project: RowMapping, dotenv: dict[str, str]
    ) -> dict[str, str]:
        every = self._bridge_variables(job, spec, parent, project, dotenv)
        return downstream_variables(spec, every, parent["variables"] or {}, dotenv)

    def _artifact_reader(self, pipeline_id: int) -> Any:
        async def read(job_name: str, path: str) -> str | None:
            async with self._engine.connect() as conn:
                found = await queries.bridges.artifact_of(conn, pipeline_id, job_name)
            if found is None:
                return None
            data = await self._objects.get_bytes(found["object_key"])
            if data is None:
                return None
            return _member(data, path)

        return read

    async def _reopen(self, conn: AsyncConnection, row: RowMapping) -> list[queries.jobs.Queued]:
        """The downstream runs again: so does its bridge, and what its end had skipped waits again."""
        await queries.pipelines.lock(conn, row["pipeline_id"])
        current = await queries.jobs.lock(conn, row["id"])
        if current is None or current["retried"] or not JobStatus(current["status"]).is_complete:
            return []
        await queries.bridges.reopen(conn, row["id"])
        await retry.reset_skipped(conn, row["pipeline_id"], row["name"])
        return await advance(conn, row["pipeline_id"])

    async def _end(
        self, conn: AsyncConnection, row: Any, status: str, failure_reason: str | None = None
    ) -> list[queries.jobs.Queued]:
        await queries.pipelines.lock(conn, row["pipeline_id"])
        current = await queries.jobs.lock(conn, row["id"])
        if current is None or current["status"] not in (JobStatus.RUNNING, JobStatus.MANUAL) or current["status"] == status:
            return []
        if status in (JobStatus.MANUAL, JobStatus.RUNNING):  # mirror: not an end
            await queries.jobs.set_status(conn, [row["id"]], status)
        else:
            await queries.jobs.finish(conn, row["id"], status, failure_reason=failure_reason)
        return await advance(conn, row["pipeline_id"])


def downstream_variables(
    spec: JobSpec, every: dict[str, str], pipeline_variables: dict[str, Any], dotenv: dict[str, str]
) -> dict[str, str]:
    """GitLab's downstream variables (``Downstream::Generator``), later wins: the bridge's YAML
    variables expanded (``forward:yaml_variables``), then its dependencies' dotenv and the
    pipeline variables (``forward:pipeline_variables``)."""
    forward = (spec.trigger or {}).get("forward") or {}
    passed: dict[str, str] = {}
    if forward.get("yaml_variables", True):
        passed.update({name: every[name] for name in spec.variables})
    if forward.get("pipeline_variables", False):
        passed.update(dotenv)
        passed.update({k: str(v) for k, v in pipeline_variables.items()})
    return passed


def _followed_status(spec: dict[str, Any], downstream: str) -> str | None:
    """The bridge's status for its downstream's (None: keep waiting)."""
    strategy = (spec.get("trigger") or {}).get("strategy")
    if not strategy:
        return None
    if downstream in ("success", "failed", "canceled"):
        return downstream
    if downstream == "skipped":
        return "skipped" if strategy == "mirror" else "failed"
    if downstream == "manual" and strategy == "mirror":
        return "manual"
    if downstream in ("running", "pending") and strategy == "mirror":
        return "running"
    return None


def _member(archive: bytes, path: str) -> str | None:
    """``path`` in a zip archive (GitLab's artifact include path syntax: no leading ``./``)."""
    name = path.removeprefix("./").lstrip("/")
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as opened:
            info = opened.getinfo(name)
            if info.file_size > MAX_ARTIFACT_INCLUDE_BYTES:
                raise ciconfig.IncludeFailed(f"File `{path}` is too big")
            return opened.read(info).decode("utf-8", errors="replace")
    except KeyError:
        return ""
    except zipfile.BadZipFile:
        return None
