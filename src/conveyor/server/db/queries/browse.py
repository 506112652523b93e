"""Read-only queries behind the REST API's lists: filtered, ordered, one page (LIMIT/OFFSET) and
its count, as GitLab's finders (``PipelinesFinder``, ``JobsFinder``, ``ProjectsFinder``,
``Ci::RunnersFinder``). Jobs come joined with their pipeline and runner, the fields GitLab's job
entity shows. Nothing here writes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db.queries import paging, runner_scopes
from conveyor.server.db.queries import projects as project_queries
from conveyor.server.db.tables import artifacts, jobs, pipelines, projects, runners

_LIVE = sa.or_(artifacts.c.expire_at.is_(None), artifacts.c.expire_at > sa.func.now())
# GitLab's pipeline updated_at moves with each status change; ours is the latest of its times
PIPELINE_UPDATED_AT = sa.func.greatest(pipelines.c.created_at, pipelines.c.started_at, pipelines.c.finished_at)
# scope= of the pipeline list, as GitLab's PipelinesFinder
PIPELINE_SCOPES = {
    "running": ("running",),
    "pending": ("pending",),
    "finished": ("success", "failed", "canceled", "skipped"),
}


@dataclass(frozen=True)
class PipelineFilter:
    status: str | None = None
    ref: str | None = None
    sha: str | None = None
    source: str | None = None
    scope: str | None = None  # running, pending, finished, branches, tags
    username: str | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


def _pipeline_where(project_id: int, f: PipelineFilter) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = [pipelines.c.project_id == project_id]
    exact = {"status": f.status, "ref": f.ref, "sha": f.sha, "source": f.source}
    where += [pipelines.c[name] == value for name, value in exact.items() if value is not None]
    if f.source is None:  # GitLab lists child pipelines only when asked for source=parent_pipeline
        where.append(pipelines.c.source != "parent_pipeline")
    if f.scope in PIPELINE_SCOPES:
        where.append(pipelines.c.status.in_(PIPELINE_SCOPES[f.scope]))
    elif f.scope in ("branches", "tags"):
        where.append(pipelines.c.tag.is_(f.scope == "tags"))
        newest = sa.select(sa.func.max(pipelines.c.id)).where(pipelines.c.project_id == project_id).group_by(pipelines.c.ref)
        where.append(pipelines.c.id.in_(newest))
    if f.username is not None:
        where.append(pipelines.c.user["login"].astext == f.username)
    bounds = ((f.updated_after, PIPELINE_UPDATED_AT, True), (f.updated_before, PIPELINE_UPDATED_AT, False),
              (f.created_after, pipelines.c.created_at, True), (f.created_before, pipelines.c.created_at, False))
    where += [(column > value) if after else (column < value) for value, column, after in bounds if value is not None]
    return where


PIPELINE_ORDER = {
    "id": pipelines.c.id, "status": pipelines.c.status, "ref": pipelines.c.ref,
    "updated_at": PIPELINE_UPDATED_AT, "user_id": pipelines.c.user["id"].astext,
}


async def pipelines_of(
    conn: AsyncConnection, project_id: int, f: PipelineFilter, order_by: str, sort: str, limit: int, offset: int
) -> tuple[list[RowMapping], int]:
    """One page of a project's pipelines and how many match."""
    stmt = sa.select(pipelines, PIPELINE_UPDATED_AT.label("updated_at")).where(*_pipeline_where(project_id, f))
    column = PIPELINE_ORDER[order_by]
    direction = (lambda c: c.asc()) if sort == "asc" else (lambda c: c.desc())
    ordered = stmt.order_by(direction(column), direction(pipelines.c.id))
    return await paging.rows(conn, ordered, limit, offset), await paging.count(conn, stmt)


async def latest_pipeline(conn: AsyncConnection, project_id: int, ref: str) -> RowMapping | None:
    stmt = (
        sa.select(pipelines, PIPELINE_UPDATED_AT.label("updated_at"))
        .where(pipelines.c.project_id == project_id, pipelines.c.ref == ref, pipelines.c.source != "parent_pipeline")
        .order_by(pipelines.c.id.desc())
        .limit(1)
    )
    return (await conn.execute(stmt)).mappings().first()


def _job_select() -> sa.Select:
    """A job with its pipeline's ref, sha, tag, status, user and commit, and its runner."""
    return sa.select(
        jobs,
        pipelines.c.ref, pipelines.c.sha, pipelines.c.tag, pipelines.c.user,
        pipelines.c.commit, pipelines.c.status.label("pipeline_status"),
        runners.c.description.label("runner_description"), runners.c.paused.label("runner_paused"),
        runners.c.runner_type.label("runner_type"), runners.c.contacted_at.label("runner_contacted_at"),
    ).select_from(
        jobs.join(pipelines, pipelines.c.id == jobs.c.pipeline_id).outerjoin(runners, runners.c.id == jobs.c.runner_id)
    )


def _not_bridge() -> sa.ColumnElement[bool]:
    return jobs.c.spec["trigger"].astext.is_(None)  # as ix_jobs_active_bridges tells bridges apart


async def jobs_of_project(
    conn: AsyncConnection, project_id: int, statuses: Sequence[str], limit: int, offset: int
) -> list[RowMapping]:
    """Up to ``limit`` + 1 of a project's jobs (not bridges), newest first: GitLab does not count them."""
    stmt = _job_select().where(jobs.c.project_id == project_id, _not_bridge())
    if statuses:
        stmt = stmt.where(jobs.c.status.in_(statuses))
    return await paging.rows(conn, stmt.order_by(jobs.c.id.desc()), limit + 1, offset)


async def jobs_of_pipeline(
    conn: AsyncConnection, pipeline_id: int, statuses: Sequence[str], include_retried: bool, limit: int, offset: int,
    *, bridges: bool = False,
) -> tuple[list[RowMapping], int]:
    """One page of a pipeline's jobs (or its bridges), in stage order, and how many match."""
    stmt = _job_select().where(jobs.c.pipeline_id == pipeline_id, sa.not_(_not_bridge()) if bridges else _not_bridge())
    if statuses:
        stmt = stmt.where(jobs.c.status.in_(statuses))
    if not include_retried:
        stmt = stmt.where(sa.not_(jobs.c.retried))
    return await paging.rows(conn, stmt.order_by(jobs.c.stage_idx, jobs.c.id), limit, offset), await paging.count(conn, stmt)


async def jobs_of_runner(
    conn: AsyncConnection, runner_id: int, statuses: Sequence[str], sort: str, limit: int, offset: int
) -> tuple[list[RowMapping], int]:
    stmt = _job_select().add_columns(projects.c.name.label("project_name")).join(projects, projects.c.id == jobs.c.project_id)
    stmt = stmt.where(jobs.c.runner_id == runner_id)
    if statuses:
        stmt = stmt.where(jobs.c.status.in_(statuses))
    ordered = stmt.order_by(jobs.c.id.asc() if sort == "asc" else jobs.c.id.desc())
    return await paging.rows(conn, ordered, limit, offset), await paging.count(conn, stmt)


async def job(conn: AsyncConnection, job_id: int) -> RowMapping | None:
    return (await conn.execute(_job_select().where(jobs.c.id == job_id))).mappings().first()


async def running_job_of_token(conn: AsyncConnection, token_hash: str) -> RowMapping | None:
    """The running (or canceling) job whose token hashes to ``token_hash`` (GitLab's ``GET /job``)."""
    active = jobs.c.status.in_(("running", "canceling"))
    return (await conn.execute(_job_select().where(jobs.c.token_hash == token_hash, active))).mappings().first()


async def artifacts_of(conn: AsyncConnection, job_ids: Iterable[int]) -> dict[int, list[RowMapping]]:
    """The live artifacts of these jobs, by job id."""
    ids = list(job_ids)
    found: dict[int, list[RowMapping]] = {i: [] for i in ids}
    if ids:
        stmt = sa.select(artifacts).where(artifacts.c.job_id.in_(ids), _LIVE).order_by(artifacts.c.id)
        for row in (await conn.execute(stmt)).mappings():
            found[row["job_id"]].append(row)
    return found


async def last_successful_job(conn: AsyncConnection, project_id: int, ref: str, name: str) -> RowMapping | None:
    """The job ``name`` of the newest successful pipeline of ``ref`` (GitLab's latest artifacts)."""
    newest = (
        sa.select(pipelines.c.id)
        .where(pipelines.c.project_id == project_id, pipelines.c.ref == ref, pipelines.c.status == "success")
        .order_by(pipelines.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    stmt = _job_select().where(jobs.c.pipeline_id == newest, jobs.c.name == name, sa.not_(jobs.c.retried))
    return (await conn.execute(stmt.order_by(jobs.c.id.desc()).limit(1))).mappings().first()


PROJECT_ORDER = {"id": projects.c.id, "name": projects.c.name, "path": projects.c.name, "created_at": projects.c.created_at,
                 "updated_at": projects.c.created_at, "last_activity_at": projects.c.created_at}


async def projects_page(
    conn: AsyncConnection, search: str | None, order_by: str, sort: str, limit: int, offset: int, ids: set[int] | None = None
) -> tuple[list[RowMapping], int]:
    """``ids``: only these projects (the caller's; None for an administrator: all)."""
    stmt = project_queries.with_namespace()
    if ids is not None:
        stmt = stmt.where(projects.c.id.in_(sorted(ids)))
    if search:
        stmt = stmt.where(projects.c.name.ilike(f"%{_escape(search)}%", escape="\\"))
    column = PROJECT_ORDER[order_by]
    ordered = stmt.order_by(column.asc() if sort == "asc" else column.desc(), projects.c.id.desc())
    return await paging.rows(conn, ordered, limit, offset), await paging.count(conn, stmt)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def runners_page(conn: AsyncConnection, where: dict[str, Any], limit: int, offset: int) -> tuple[list[RowMapping], int]:
    """Runners matching ``where``: ``type``, ``paused``, ``tag_list`` (all of them), ``status``
    (``online`` within ``online_since``, ``offline``, ``never_contacted``), ``ids``, ``serving``."""
    stmt = sa.select(runners)
    if where.get("type"):
        stmt = stmt.where(runners.c.runner_type == where["type"])
    if where.get("paused") is not None:
        stmt = stmt.where(runners.c.paused.is_(where["paused"]))
    if where.get("tag_list"):
        stmt = stmt.where(runners.c.tag_list.contains(list(where["tag_list"])))
    status, since = where.get("status"), where.get("online_since")
    if status == "online":
        stmt = stmt.where(runners.c.contacted_at > since)
    elif status in ("offline", "stale"):
        stmt = stmt.where(runners.c.contacted_at <= since)
    elif status == "never_contacted":
        stmt = stmt.where(runners.c.contacted_at.is_(None))
    if where.get("ids") is not None:
        stmt = stmt.where(runners.c.id.in_(where["ids"]))
    if where.get("serving") is not None:  # (project ids, group namespace ids, instance runners too)
        project_ids, namespace_ids, instance = where["serving"]
        stmt = stmt.where(runner_scopes.serving(project_ids, namespace_ids, instance=instance))
    return await paging.rows(conn, stmt.order_by(runners.c.id), limit, offset), await paging.count(conn, stmt)


async def pipeline_coverage(conn: AsyncConnection, pipeline_id: int) -> float | None:
    """The average coverage of the pipeline's latest jobs that report one (GitLab's), or None."""
    stmt = sa.select(sa.func.avg(jobs.c.coverage)).where(jobs.c.pipeline_id == pipeline_id, sa.not_(jobs.c.retried))
    value = (await conn.execute(stmt)).scalar_one_or_none()
    return float(value) if value is not None else None
