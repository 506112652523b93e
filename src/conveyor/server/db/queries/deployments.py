"""Environments and deployments (``environment:``): recorded when a pipeline is stored; a
deployment's status and an environment's state and URL are read from the jobs."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.server.db.tables import deployments, environments, jobs, pipelines

DEPLOYING = ("start", "stop")  # prepare, verify and access deploy nothing (GitLab)


async def record(conn: AsyncConnection, pipeline_id: int, project_id: int) -> int:
    """An environment (created once per name, with the job's CI_ENVIRONMENT_SLUG) and a
    deployment for each job of the pipeline that deploys. Returns how many deployments."""
    stmt = sa.select(jobs.c.id, jobs.c.spec).where(jobs.c.pipeline_id == pipeline_id, jobs.c.spec["environment"].astext.is_not(None))
    count = 0
    for job in (await conn.execute(stmt)).mappings():
        environment = job["spec"]["environment"]
        action = environment.get("action", "start")
        if action not in DEPLOYING:
            continue
        name = str(environment["name"])
        known = job["spec"].get("predefined_variables") or {}
        slug, tier = known.get("CI_ENVIRONMENT_SLUG") or name, known.get("CI_ENVIRONMENT_TIER") or "other"
        upsert = (
            pg_insert(environments)
            .values(project_id=project_id, name=name, slug=slug, tier=tier)
            .on_conflict_do_update(index_elements=["project_id", "name"], set_={"name": name})
            .returning(environments.c.id)
        )
        environment_id = (await conn.execute(upsert)).scalar_one()
        await conn.execute(
            deployments.insert().values(
                project_id=project_id, environment_id=environment_id, job_id=job["id"], action=action,
                url=environment.get("url"),
            )
        )
        count += 1
    return count


async def for_project(conn: AsyncConnection, project_id: int) -> list[RowMapping]:
    """The project's deployments, newest first, with their environment, pipeline and the latest
    attempt of their job (a retried job's new attempt deploys in its place)."""
    attempt = jobs.alias("attempt")
    latest = (
        sa.select(attempt.c.id, attempt.c.name, attempt.c.status, attempt.c.finished_at, attempt.c.dotenv_variables)
        .where(attempt.c.pipeline_id == jobs.c.pipeline_id, attempt.c.name == jobs.c.name)
        .order_by(attempt.c.id.desc())
        .limit(1)
        .lateral("latest")
    )
    stmt = (
        sa.select(
            deployments, latest.c.id.label("deployable_id"), latest.c.name.label("job_name"),
            latest.c.status.label("job_status"), latest.c.finished_at, latest.c.dotenv_variables, jobs.c.pipeline_id, pipelines.c.ref,
            jobs.c.spec["environment"].label("options"),
            pipelines.c.sha, environments.c.name.label("environment_name"),
            environments.c.slug.label("environment_slug"), environments.c.tier.label("environment_tier"),
        )
        .select_from(deployments)
        .join(jobs, jobs.c.id == deployments.c.job_id)
        .join(latest, sa.true())
        .join(pipelines, pipelines.c.id == jobs.c.pipeline_id)
        .join(environments, environments.c.id == deployments.c.environment_id)
        .where(deployments.c.project_id == project_id)
        .order_by(deployments.c.id.desc())
    )
    return list((await conn.execute(stmt)).mappings())


async def environments_of(conn: AsyncConnection, project_id: int) -> list[RowMapping]:
    stmt = sa.select(environments).where(environments.c.project_id == project_id).order_by(environments.c.id)
    return list((await conn.execute(stmt)).mappings())


async def environment(conn: AsyncConnection, project_id: int, environment_id: int) -> RowMapping | None:
    stmt = sa.select(environments).where(environments.c.project_id == project_id, environments.c.id == environment_id)
    return (await conn.execute(stmt)).mappings().first()


async def auto_stop_candidates(conn: AsyncConnection) -> list[int]:
    """Projects with an environment whose deploying job set ``auto_stop_in`` (few: review apps)."""
    stmt = (
        sa.select(deployments.c.project_id)
        .join(jobs, jobs.c.id == deployments.c.job_id)
        .where(deployments.c.action == "start", jobs.c.spec["environment"]["auto_stop_in"].is_not(None))
        .distinct()
    )
    return list((await conn.execute(stmt)).scalars())


async def set_stopped(conn: AsyncConnection, environment_id: int) -> None:
    await conn.execute(environments.update().where(environments.c.id == environment_id).values(stopped_at=sa.func.now()))


async def stop_job(conn: AsyncConnection, pipeline_id: int, name: str) -> RowMapping | None:
    """The current attempt of the ``on_stop`` job in the deploying pipeline."""
    stmt = sa.select(jobs).where(jobs.c.pipeline_id == pipeline_id, jobs.c.name == name, sa.not_(jobs.c.retried))
    return (await conn.execute(stmt)).mappings().first()
