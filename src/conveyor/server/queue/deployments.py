"""Environments and deployments as GitLab's API shows them (``environment:``).

A job with ``environment:`` and ``action: start`` (the default) or ``stop`` records a deployment
when its pipeline is stored (``queries.deployments.record``); the deployment's status is its
job's latest attempt's (``created``, ``running``, ``success``, ``failed``, ``canceled``...). An
environment is ``available`` until a ``stop`` deployment succeeds, ``stopped`` after it and
until a later ``start`` succeeds; its ``external_url`` is the URL of its last successful
``start`` deployment, with the variables of that job's dotenv report expanded (GitLab's dynamic
environment URLs: ``url: $DYNAMIC_ENVIRONMENT_URL`` written by the deploying job).

Stopping (``POST .../environments/:id/stop``, GitLab's ``Environments::StopService``) plays the
``on_stop`` job of the last successful ``start`` deployment; with none the environment is
stopped at once (``environments.stopped_at``). ``auto_stop_in`` of that deployment's job gives
``auto_stop_at`` (its finish plus the duration); ``run`` stops due environments the same way
every ``interval`` seconds (GitLab's ``Environments::AutoStopWorker``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.ciconfig.duration import parse_seconds
from conveyor.ciconfig.expansion import expand_existing
from conveyor.server import periodic
from conveyor.server.db import queries
from conveyor.server.errors import NotFound
from conveyor.server.queue.actions import JobActions
from conveyor.server.queue.notify import QueueNotifier

log = structlog.get_logger(__name__)

STATUS = {"created": "created", "waiting_for_resource": "blocked", "manual": "blocked", "scheduled": "blocked",
          "pending": "created", "running": "running", "canceling": "running"}  # fmt: skip


class Deployments:
    def __init__(
        self, engine: AsyncEngine, actions: JobActions | None = None, notifier: QueueNotifier | None = None,
        *, interval: float = 60.0,
    ) -> None:
        self._engine, self._actions, self._notifier, self._interval = engine, actions, notifier, interval

    async def stop(self, project_id: int, environment_id: int) -> dict[str, Any]:
        """Stop an environment: play its ``on_stop`` job, or mark it stopped when it has none."""
        async with self._engine.connect() as conn:
            environment = await queries.deployments.environment(conn, project_id, environment_id)
            if environment is None:
                raise NotFound("404 Environment Not Found")
            rows = [r for r in await queries.deployments.for_project(conn, project_id) if r["environment_id"] == environment_id]
            started = _last_start(rows)
            on_stop = str((started["options"] or {}).get("on_stop") or "") if started else ""
            job = await queries.deployments.stop_job(conn, started["pipeline_id"], on_stop) if on_stop else None
        if job is not None and self._actions is not None:
            result = await self._actions.play(project_id, int(job["id"]))
            if result.enqueued and self._notifier is not None:
                await self._notifier.tick(result.enqueued)
        else:
            async with self._engine.begin() as conn:
                await queries.deployments.set_stopped(conn, environment_id)
        return next(e for e in await self.environments(project_id) if e["id"] == environment_id)

    async def auto_stop(self, now: datetime | None = None) -> int:
        """Stop every available environment whose ``auto_stop_at`` has passed; returns how many."""
        now = now or datetime.now(UTC)
        async with self._engine.connect() as conn:
            projects = await queries.deployments.auto_stop_candidates(conn)
        stopped = 0
        for project_id in projects:
            for environment in await self.environments(project_id):
                due = environment["auto_stop_at"]
                if environment["state"] == "available" and due and datetime.fromisoformat(due.replace("Z", "+00:00")) <= now:
                    try:
                        await self.stop(project_id, environment["id"])
                        stopped += 1
                    except Exception:  # e.g. its stop job is running already: the next pass sees
                        log.exception("environment_auto_stop_failed", environment_id=environment["id"])
        return stopped

    async def run(self) -> None:
        await periodic.every(self._interval, self.auto_stop, log, "environment_auto_stop_pass_failed")

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


def _last_start(rows: list[RowMapping]) -> RowMapping | None:
    return next((row for row in rows if row["job_status"] == "success" and row["action"] == "start"), None)


def _environment(environment: RowMapping, rows: list[RowMapping]) -> dict[str, Any]:
    succeeded = [row for row in rows if row["job_status"] == "success"]  # newest first
    state = "stopped" if succeeded and succeeded[0]["action"] == "stop" else "available"
    started = _last_start(rows)
    stopped_at = environment["stopped_at"]
    if stopped_at is not None and (started is None or (started["finished_at"] or stopped_at) <= stopped_at):
        state = "stopped"  # stopped without a stop job, and not deployed since
    return {
        "id": environment["id"],
        "name": environment["name"],
        "slug": environment["slug"],
        "external_url": _url(started) if started else None,
        "state": state,
        "tier": environment["tier"],
        "created_at": _iso(environment["created_at"]),
        "auto_stop_at": _auto_stop_at(started) if state == "available" else None,
        "last_deployment": _deployment(rows[0]) if rows else None,
    }


def _auto_stop_at(started: RowMapping | None) -> str | None:
    """The start deployment's finish plus its job's ``environment:auto_stop_in`` (GitLab's)."""
    text = (started["options"] or {}).get("auto_stop_in") if started else None
    seconds = parse_seconds(str(text).strip().lower()) if text and str(text).strip().lower() != "never" else None
    if seconds is None or started is None or started["finished_at"] is None:
        return None
    return _iso(started["finished_at"] + timedelta(seconds=seconds))


def _url(row: RowMapping) -> str | None:
    url = row["url"]
    return expand_existing(url, row["dotenv_variables"]) if url and row["dotenv_variables"] else url


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None
