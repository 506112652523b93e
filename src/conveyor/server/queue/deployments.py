"""Environments and deployments as GitLab's API shows them (``environment:``).

A job with ``environment:`` and ``action: start`` (the default) or ``stop`` records a deployment
when its pipeline is stored (``queries.deployments.record``); the deployment's status is its
job's latest attempt's (``created``, ``running``, ``success``, ``failed``, ``canceled``...). An
environment is ``available`` until a ``stop`` deployment succeeds, ``stopped`` after it and
until a later ``start`` succeeds; its ``external_url`` is the URL of its last successful
``start`` deployment, with the variables of that job's dotenv report expanded (GitLab's dynamic
environment URLs: ``url: $DYNAMIC_ENVIRONMENT_URL`` written by the deploying job).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.ciconfig.expansion import expand_existing
from conveyor.server.db import queries

STATUS = {"created": "created", "waiting_for_resource": "blocked", "manual": "blocked", "scheduled": "blocked",
          "pending": "created", "running": "running", "canceling": "running"}  # fmt: skip


class Deployments:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def list(self, project_id: int) -> list[dict[str, Any]]:
        async with self._engine.connect() as conn:
            rows = await queries.deployments.for_project(conn, project_id)
        return [_deployment(row) for row in rows]

    async def environments(self, project_id: int) -> list[dict[str, Any]]:
        async with self._engine.connect() as conn:
            found = await queries.deployments.environments_of(conn, project_id)
            rows = await queries.deployments.for_project(conn, project_id)
        return [_environment(environment, [r for r in rows if r["environment_id"] == environment["id"]]) for environment in found]


def _status(row: RowMapping) -> str:
    return STATUS.get(row["job_status"], row["job_status"])


def _deployment(row: RowMapping) -> dict[str, Any]:
    return {
        "id": row["id"],
        "iid": row["id"],
        "ref": row["ref"],
        "sha": row["sha"],
        "status": _status(row),
        "created_at": _iso(row["created_at"]),
        "finished_at": _iso(row["finished_at"]),
        "environment": {"id": row["environment_id"], "name": row["environment_name"],
                        "slug": row["environment_slug"], "tier": row["environment_tier"]},  # fmt: skip
        "deployable": {"id": row["deployable_id"], "name": row["job_name"], "status": row["job_status"],
                       "pipeline": {"id": row["pipeline_id"]}},  # fmt: skip
    }


def _environment(environment: RowMapping, rows: list[RowMapping]) -> dict[str, Any]:
    succeeded = [row for row in rows if row["job_status"] == "success"]  # newest first
    state = "stopped" if succeeded and succeeded[0]["action"] == "stop" else "available"
    started = next((row for row in succeeded if row["action"] == "start"), None)
    return {
        "id": environment["id"],
        "name": environment["name"],
        "slug": environment["slug"],
        "external_url": _url(started) if started else None,
        "state": state,
        "tier": environment["tier"],
        "created_at": _iso(environment["created_at"]),
        "last_deployment": _deployment(rows[0]) if rows else None,
    }


def _url(row: RowMapping) -> str | None:
    url = row["url"]
    return expand_existing(url, row["dotenv_variables"]) if url and row["dotenv_variables"] else url


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None
