"""Job artifacts: one row per (job, file type) pointing at an object in the object store."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db.tables import artifacts, jobs, pipelines, projects

_live = sa.or_(artifacts.c.expire_at.is_(None), artifacts.c.expire_at > sa.func.now())
_expired = artifacts.c.expire_at <= sa.func.now()
_something = sa.or_(artifacts.c.id.is_not(None), jobs.c.dotenv_variables.is_not(None))  # after _with_archive()


async def lock(conn: AsyncConnection, job_id: int, file_type: str) -> RowMapping | None:
    """The current row of this type (expired or not), locked until the transaction ends."""
    stmt = (
        sa.select(artifacts)
        .where(artifacts.c.job_id == job_id, artifacts.c.file_type == file_type)
        .with_for_update()
    )
    return (await conn.execute(stmt)).mappings().first()


async def upsert(
    conn: AsyncConnection,
    *,
    job_id: int,
    file_type: str,
    file_format: str,
    filename: str,
    size: int,
    object_key: str,
    expire_in: timedelta | None,
) -> RowMapping:
    """Insert the artifact or replace the job's one of the same type; returns the stored row.

    ``expire_at`` is computed from the database clock, the one the sweep compares against.
    """
    values = {
        "file_format": file_format,
        "filename": filename,
        "size": size,
        "object_key": object_key,
        "expire_at": None if expire_in is None else sa.func.now() + expire_in,
    }
    stmt = pg_insert(artifacts).values(job_id=job_id, file_type=file_type, **values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[artifacts.c.job_id, artifacts.c.file_type],
        set_={**values, "created_at": sa.func.now()},
    ).returning(*artifacts.c)
    return (await conn.execute(stmt)).mappings().one()


async def get_live(conn: AsyncConnection, job_id: int, file_type: str) -> RowMapping | None:
    """The job's artifact of this type unless it has expired."""
    stmt = sa.select(artifacts).where(artifacts.c.job_id == job_id, artifacts.c.file_type == file_type, _live)
    return (await conn.execute(stmt)).mappings().first()


async def requester(conn: AsyncConnection, token_hash: str) -> RowMapping | None:
    """The job holding this token (id, pipeline_id, project_id, status, its cross-pipeline
    needs' projects): who asks for a download."""
    stmt = sa.select(
        jobs.c.id, jobs.c.pipeline_id, jobs.c.project_id, jobs.c.status, jobs.c.spec["cross_needs"].label("cross_needs")
    ).where(jobs.c.token_hash == token_hash)
    return (await conn.execute(stmt)).mappings().first()


async def expired(conn: AsyncConnection, limit: int = 100) -> list[RowMapping]:
    stmt = sa.select(artifacts.c.id, artifacts.c.object_key).where(_expired).order_by(artifacts.c.expire_at).limit(limit)
    return list((await conn.execute(stmt)).mappings())


async def delete_expired(conn: AsyncConnection, artifact_id: int, object_key: str) -> bool:
    """Delete the row if it still is the expired one read before (not replaced meanwhile)."""
    stmt = (
        artifacts.delete()
        .where(artifacts.c.id == artifact_id, artifacts.c.object_key == object_key, _expired)
        .returning(artifacts.c.id)
    )
    return (await conn.execute(stmt)).first() is not None


async def for_dependencies(
    conn: AsyncConnection,
    pipeline_id: int,
    stage_idx: int,
    needs: list[str] | None,
    only: list[str] | None = None,
) -> list[RowMapping]:
    """The jobs a job takes artifacts from: of earlier stages, or of its ``needs``; with
    ``only`` (the job's ``dependencies:`` list), those jobs among them. Each has its live
    ``archive`` (``filename``/``size``, None when it has none) or its dotenv variables."""
    earlier = jobs.c.stage_idx < stage_idx if needs is None else jobs.c.name.in_(needs)
    if only is not None:
        earlier = sa.and_(earlier, jobs.c.name.in_(only))
    stmt = (
        _with_archive()
        .where(jobs.c.pipeline_id == pipeline_id, sa.not_(jobs.c.retried), earlier, _something)
        .order_by(jobs.c.stage_idx, jobs.c.id)
    )
    return list((await conn.execute(stmt)).mappings())


def _with_archive() -> sa.Select:
    archive = sa.and_(artifacts.c.job_id == jobs.c.id, artifacts.c.file_type == "archive", _live)
    columns = (jobs.c.id, jobs.c.name, artifacts.c.filename, artifacts.c.size, jobs.c.dotenv_variables)
    return sa.select(*columns).select_from(jobs.outerjoin(artifacts, archive))


async def latest_successful(
    conn: AsyncConnection, job_name: str, *, pipeline_id: int | None = None, project: str | None = None, ref: str | None = None
) -> list[RowMapping]:
    """The live ``archive`` artifact (or dotenv variables) of the latest successful ``job_name``
    having either: in one pipeline (``needs:pipeline:job``) or on a project's ref (``needs:project``)."""
    where = [jobs.c.name == job_name, jobs.c.status == "success", _something]
    stmt = _with_archive()
    if pipeline_id is not None:
        where.append(jobs.c.pipeline_id == pipeline_id)
    else:
        stmt = stmt.join(pipelines, pipelines.c.id == jobs.c.pipeline_id).join(projects, projects.c.id == jobs.c.project_id)
        where += [projects.c.name == project, pipelines.c.ref == ref]
    stmt = stmt.where(*where).order_by(jobs.c.id.desc()).limit(1)
    return list((await conn.execute(stmt)).mappings())


async def of_pipeline(conn: AsyncConnection, pipeline_id: int, file_type: str) -> list[RowMapping]:
    """The live artifacts of one type of the pipeline's latest job attempts, with the job's name."""
    stmt = (
        sa.select(artifacts, jobs.c.name.label("job_name"))
        .join(jobs, jobs.c.id == artifacts.c.job_id)
        .where(jobs.c.pipeline_id == pipeline_id, sa.not_(jobs.c.retried), artifacts.c.file_type == file_type, _live)
        .order_by(jobs.c.stage_idx, jobs.c.id)
    )
    return list((await conn.execute(stmt)).mappings())
