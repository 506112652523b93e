"""Create a pipeline: read ``.gitlab-ci.yml`` at a commit, expand it, store its jobs, start it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor import ciconfig, pipeline
from conveyor.protocol import JobSpec, JobStatus
from conveyor.server.db import queries
from conveyor.server.db.replicas import Reads
from conveyor.server.errors import BadRequest, NotFound
from conveyor.server.queue import interrupt, predefined, states
from conveyor.server.queue.admission import Admission
from conveyor.server.queue.progress import apply
from conveyor.server.sources import GitIncludeResolver, GitSources, TemplateDirectory
from conveyor.server.sources.includes import LazyFiles

CONFIG_PATH = ".gitlab-ci.yml"
ArtifactReader = Callable[[str, str], Awaitable[str | None]]  # (job name, path) -> text
# who makes a pipeline when the caller names no one: GitLab's root (GITLAB_USER_*)
ADMIN_USER = predefined.ROOT_USER


@dataclass(frozen=True)
class Facts:
    """What a new pipeline records for its predefined variables (``predefined.py``)."""

    source: str = "push"
    before_sha: str | None = None
    tag: bool = False
    commit: dict[str, str] = field(default_factory=dict)
    user: dict[str, Any] | None = None
    parent_pipeline_id: int | None = None
    source_job_id: int | None = None
    trigger_id: int | None = None
    schedule_id: int | None = None
    file_variables: tuple[str, ...] = ()


@dataclass(frozen=True)
class Origin:
    """How a pipeline starts: ``CI_PIPELINE_SOURCE``, the pushed range (``before_sha``; None: the
    commit's parent for ``rules:changes``, zeros for ``CI_COMMIT_BEFORE_SHA``), the exact commit
    (None: resolve the ref), the trigger or schedule, which variables are files, and who starts
    it (``{id, username, name, email}`` for ``GITLAB_USER_*``; None: root)."""

    source: str = "push"
    before_sha: str | None = None
    sha: str | None = None
    tag: bool | None = None  # None: a tag if the ref names one
    trigger_id: int | None = None
    schedule_id: int | None = None
    file_variables: tuple[str, ...] = ()
    user: dict[str, Any] | None = None


@dataclass(frozen=True)
class CreatedPipeline:
    id: int
    sha: str
    ref: str
    enqueued: list[queries.jobs.Queued]
    row: Mapping[str, Any]  # the pipeline's row as its creation committed it
    auto_canceled: list[int] = field(default_factory=list)  # older pipelines this one made redundant


def initial_status(dumped: Sequence[dict[str, Any]]) -> str:
    """The status ``progress.apply`` will give a new pipeline of these jobs (all ``created``), so
    that it is inserted with it and not updated right after; ``created`` (and the update) when a
    resource group or a start or finish time is involved."""
    if any(spec.get("resource_group") for spec in dumped):
        return JobStatus.CREATED.value
    jobs = [{"name": s["name"], "stage_idx": s["stage_idx"], "spec": s, "status": JobStatus.CREATED, "exit_code": None}
            for s in dumped]  # fmt: skip
    status = pipeline.progress([states.job_state(job) for job in jobs]).status
    return str(status) if status in (JobStatus.CREATED, JobStatus.PENDING, JobStatus.MANUAL, JobStatus.SCHEDULED) else JobStatus.CREATED.value


class Pipelines:
    def __init__(
        self,
        engine: AsyncEngine,
        sources: GitSources,
        project_variables: Callable[[int, bool], Awaitable[dict[str, str]]] | None = None,
        *,
        reads: Reads | None = None,
        templates: TemplateDirectory | None = None,
        server_url: str = "http://localhost",
        admission: Admission | None = None,
    ) -> None:
        self._server_url = server_url
        self.admission = admission or Admission(0)
        self._engine = engine
        self._sources = sources
        self._templates = templates
        self._project_variables = project_variables  # (project id, protected ref) -> for rules:
        self._reads = reads or Reads(engine, [])

    @property
    def sources(self) -> GitSources:
        return self._sources

    async def create(
        self,
        project: RowMapping,
        ref: str | None = None,
        variables: dict[str, str] | None = None,
        origin: Origin | None = None,
    ) -> CreatedPipeline:
        """Expand the project's CI config at ``ref`` (default branch if None) and queue stage one.

        Raises ``ciconfig.ConfigError`` with every problem found, or ``BadRequest`` for git errors.
        Waits its turn when ``admission``'s creations are all in progress.
        """
        async with self.admission.turn():
            return await self._create(project, ref, variables, origin)

    async def _create(
        self, project: RowMapping, ref: str | None, variables: dict[str, str] | None, origin: Origin | None
    ) -> CreatedPipeline:
        origin = origin or Origin()
        source = project["source"]
        ref = ref or project["default_branch"] or await self._sources.default_branch(source)
        if origin.sha is None and origin.tag is None:
            sha, tag = await self._sources.resolve_ref(source, ref)  # one git process for both
        else:
            sha = origin.sha or await self._sources.resolve(source, ref)
            tag = origin.tag if origin.tag is not None else await self._sources.is_tag(source, ref)
        if not sha:
            raise BadRequest(f"Reference not found: {ref}")
        text = await self._sources.read_with_commit(source, sha, CONFIG_PATH)  # facts() reads the commit next
        if text is None:
            raise BadRequest(f"Missing {CONFIG_PATH} file at {ref} ({sha[:8]})")
        origin = replace(origin, tag=tag)
        facts = await self.facts(
            project, ref, sha, source=origin.source, before_sha=origin.before_sha, tag=tag,
            trigger_id=origin.trigger_id, schedule_id=origin.schedule_id, file_variables=origin.file_variables,
            user=origin.user,
        )
        config = await self._load(project, ref, sha, text, variables or {}, facts, origin=origin)
        # in a worker thread too: cache:key:files reads git through the resolver on this loop
        specs = await asyncio.to_thread(pipeline.build, config)
        return await self.store(project, ref, sha, specs, variables, facts)

    async def create_downstream(
        self,
        project: RowMapping,
        ref: str,
        sha: str,
        text: str,
        variables: dict[str, str],
        facts: Facts,
        artifact: ArtifactReader | None = None,
        inputs: dict[str, Any] | None = None,
    ) -> CreatedPipeline:
        """A downstream pipeline of a bridge: ``text`` is the child's ``include:`` or the target
        project's own config; ``variables`` are the forwarded ones (pipeline variables there);
        ``artifact(job, path)`` reads the parent pipeline's artifacts (dynamic child pipelines);
        ``inputs`` are ``trigger:inputs``, for the target config's ``spec:inputs``.

        Raises ``ciconfig.ConfigError`` (config problems, pipeline filtered or empty)."""
        async with self.admission.turn():
            config = await self._load(project, ref, sha, text, variables, facts, artifact, inputs)
            specs = await asyncio.to_thread(pipeline.build, config)
            return await self.store(project, ref, sha, specs, variables, facts)

    async def facts(self, project: RowMapping, ref: str, sha: str, **given: Any) -> Facts:
        """The commit's message, author and time, the tag, and (unless ``given``) the previous
        commit as ``before_sha``; ``given`` fills the rest of ``Facts``."""
        source = project["source"]
        tag = given.pop("tag", None)
        if tag is None:
            tag = await self._sources.is_tag(source, ref)
        commit = await self._sources.commit_info(source, sha)
        if tag:
            commit["tag_message"] = await self._sources.tag_message(source, ref)
        if "before_sha" not in given:
            given["before_sha"] = await self._sources.parent(source, sha)
        given["user"] = given.get("user") or ADMIN_USER
        return Facts(tag=tag, commit=commit, **given)

    async def _load(
        self, project: RowMapping, ref: str, sha: str, text: str, variables: dict[str, str], facts: Facts,
        artifact: ArtifactReader | None = None,
        inputs: dict[str, Any] | None = None,
        origin: Origin | None = None,
    ) -> ciconfig.PipelineConfig:
        """``ciconfig.load`` in a worker thread (it reads includes through git and HTTP)."""
        source = project["source"]
        commit = facts.commit
        origin = origin or Origin(source=facts.source, before_sha=facts.before_sha, tag=facts.tag)
        # rules:changes: the pushed range; unknown (always true) for a new ref and for pipelines
        # without a push (trigger, schedule, downstream...); the commit's own changes for an API
        # pipeline. Read only if a rule asks (LazyFiles), as is the tree for rules:exists.
        base = origin.before_sha
        if origin.source == "push" and origin.before_sha is None:
            base = await self._sources.parent(source, sha)
        diffed = origin.source == "push" and (origin.before_sha is None or bool(base and base.strip("0")))
        protected = ref == project["default_branch"] or ref in (project["protected_refs"] or [])
        outside = await self._project_variables(project["id"], protected) if self._project_variables else {}

        async def project_source(name: str) -> str | None:
            async with self._engine.connect() as conn:
                row = await queries.projects.get(conn, name)
            return row["source"] if row is not None else None

        resolver = GitIncludeResolver(
            self._sources, source, sha, asyncio.get_running_loop(), project_source, templates=self._templates,
            artifact=artifact,
        )
        context = ciconfig.PipelineContext(
            source=facts.source,
            ref=ref,
            sha=sha,
            before_sha=base or "0" * 40,
            tag=facts.tag,
            project_id=project["id"],
            server_url=self._server_url,
            commit_message=commit.get("message", ""),
            commit_author=f"{commit['author_name']} <{commit.get('author_email', '')}>" if "author_name" in commit else None,
            commit_timestamp=commit.get("timestamp"),
            tag_message=commit.get("tag_message"),
            default_branch=project["default_branch"] or ref,
            protected=protected,
            variables=variables,
            project_variables=outside,
            changed_files=LazyFiles(lambda: resolver.changed_files(base)) if diffed else None,
            repository_files=LazyFiles(resolver.local_files),
            project_path=project["name"],
            file_hashes=resolver.file_hashes,
            compare_to=resolver.changed_since,
            project_files=resolver.project_files,
            user_variables=predefined.user_variables(facts.user),
        )

        return await asyncio.to_thread(
            ciconfig.load, text, filename=CONFIG_PATH, context=context, resolver=resolver, inputs=inputs
        )

    async def store(
        self,
        project: RowMapping,
        ref: str,
        sha: str,
        specs: Sequence[JobSpec],
        variables: dict[str, str] | None = None,
        facts: Facts | None = None,
    ) -> CreatedPipeline:
        """Store an expanded pipeline, start it, and auto-cancel the older pipelines of ``ref`` it
        makes redundant (``interruptible``, after the new one is committed, as GitLab does)."""
        dumped: list[dict[str, Any]] = [spec.model_dump(mode="json") for spec in specs]
        protected = ref == project["default_branch"] or ref in (project["protected_refs"] or [])
        async with self._engine.begin() as conn:
            facts = facts or Facts()
            row = await queries.pipelines.insert_row(
                conn, project["id"], ref, sha, variables or {}, status=initial_status(dumped),
                source=facts.source, before_sha=facts.before_sha, tag=facts.tag, commit=facts.commit or None,
                user=facts.user, parent_pipeline_id=facts.parent_pipeline_id, source_job_id=facts.source_job_id,
                trigger_id=facts.trigger_id, schedule_id=facts.schedule_id, file_variables=list(facts.file_variables),
            )
            pipeline_id = row["id"]
            jobs = await queries.jobs.insert_many(conn, pipeline_id, project["id"], dumped, protected=protected)
            if any(spec.get("environment") is not None for spec in dumped):
                await queries.deployments.record(conn, pipeline_id, project["id"])
            # what was just inserted: no one else sees the pipeline before the commit, so neither
            # its lock nor a second read of its jobs is needed
            enqueued, row = await apply(conn, row, jobs)
            # read here, not in a transaction of its own: the canceling itself waits for the commit
            older = await interrupt.older_cancelable(conn, project["id"], ref, pipeline_id, sha)
        redundant = await interrupt.cancel_redundant(self._engine, project["id"], ref, sha, pipeline_id, older)
        return CreatedPipeline(
            id=pipeline_id, sha=sha, ref=ref, enqueued=enqueued + redundant.enqueued, row=row,
            auto_canceled=redundant.canceled,
        )

    async def get(self, project_id: int, pipeline_id: int) -> RowMapping:
        async with self._engine.connect() as conn:
            row = await queries.pipelines.get(conn, pipeline_id)
        if row is None or row["project_id"] != project_id:
            raise NotFound("404 Pipeline Not Found")
        return row

    async def jobs(self, pipeline_id: int, *, include_retried: bool = False) -> list[RowMapping]:
        """A listing: from a caught-up replica when there is one."""
        return await self._reads.run(lambda conn: queries.jobs.for_pipeline(conn, pipeline_id, include_retried=include_retried))

    async def bridges(self, pipeline_id: int) -> list[RowMapping]:
        async with self._engine.connect() as conn:
            return await queries.bridges.for_pipeline(conn, pipeline_id)

    async def job(self, project_id: int, job_id: int) -> RowMapping:
        async with self._engine.connect() as conn:
            row = await queries.jobs.get(conn, job_id)
        if row is None or row["project_id"] != project_id:
            raise NotFound("404 Job Not Found")
        return row

    async def list(self, project_id: int) -> list[RowMapping]:
        """A listing: from a caught-up replica when there is one."""
        return await self._reads.run(lambda conn: queries.pipelines.list_for_project(conn, project_id))

    async def page(
        self, project_id: int, *, before_id: int | None = None, ref: str | None = None, status: str | None = None,
        limit: int = 50,
    ) -> tuple[list[RowMapping], int | None]:
        """One page of the project's pipelines, newest first, and the keyset of the next (or None)."""
        rows = await self._reads.run(lambda conn: queries.overview.pipelines_page(
            conn, project_id, before_id=before_id, ref=ref, status=status, limit=limit
        ))
        return rows[:limit], (rows[limit - 1]["id"] if len(rows) > limit else None)

    async def latest(self) -> dict[int, RowMapping]:
        """Each project's newest pipeline, by project id."""
        async with self._engine.connect() as conn:
            return await queries.overview.latest_pipelines(conn)
