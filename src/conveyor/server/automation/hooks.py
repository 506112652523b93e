"""Project hooks (rest-api.md 2.10) and ``HookDeliverer``, which sends their events (section 4).

Delivery, step by step, never inside a job or pipeline transition:
1. A status change inserts a delivery row per interested hook (database trigger, migration 0009).
2. Any server process takes due rows ``FOR UPDATE SKIP LOCKED``, leases them for a minute and
   counts the attempt, commits; then builds GitLab's body (with the status the event recorded,
   masked values scrubbed), POSTs it with ``X-Gitlab-Event``, ``X-Gitlab-Token`` (the hook's
   secret), ``X-Gitlab-Event-UUID``, ``X-Gitlab-Webhook-UUID``, ``Idempotency-Key``.
3. A 2xx ends it; anything else waits base * 2**(attempts-1) and is tried again, up to the
   attempt limit. Every attempt's outcome stays in the row: the delivery log.
4. As GitLab, a hook failing 4 attempts in a row rests (``alert_status: temporarily_disabled``,
   ``disabled_until``) for a minute, doubling with each further failure up to a day; its
   deliveries wait meanwhile. A success re-enables it.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlparse

import httpx
import structlog
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.protocol import keepalive
from conveyor.server import periodic
from conveyor.server.automation import hookbodies
from conveyor.server.db import queries
from conveyor.server.errors import BlockedUrl, InvalidUrl, NotFound, ServerError
from conveyor.server.sources.remote import is_local
from conveyor.server.variables import SecretBox

log = structlog.get_logger(__name__)
EVENTS = ("push_events", "tag_push_events", "pipeline_events", "job_events")
USER_AGENT = "GitLab/17.0.0 (Conveyor)"


class Hooks:
    def __init__(self, engine: AsyncEngine, box: SecretBox, *, allow_local: bool = False) -> None:
        self._engine = engine
        self._box = box
        self._allow_local = allow_local

    async def create(self, project_id: int, values: dict[str, Any]) -> dict[str, Any]:
        await self._check_url(values.get("url"))
        values = {**values, "uuid": str(uuid.uuid4())}
        if values.get("token"):
            values["token"] = self._box.encrypt(values["token"])
        async with self._engine.begin() as conn:
            return present(await queries.hooks.insert(conn, project_id, values))

    async def list(self, project_id: int, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """One page of the project's hooks and how many there are."""
        async with self._engine.connect() as conn:
            rows, total = await queries.hooks.list_for(conn, project_id, limit, offset)
        return [present(row) for row in rows], total

    async def get(self, project_id: int, hook_id: int) -> dict[str, Any]:
        return present(await self._one(project_id, hook_id))

    async def update(self, project_id: int, hook_id: int, values: dict[str, Any]) -> dict[str, Any]:
        await self._one(project_id, hook_id)
        if "url" in values:
            await self._check_url(values["url"])
        if "token" in values:
            values["token"] = self._box.encrypt(values["token"]) if values["token"] else None
        async with self._engine.begin() as conn:
            return present(await queries.hooks.update(conn, hook_id, values))

    async def delete(self, project_id: int, hook_id: int) -> None:
        await self._one(project_id, hook_id)
        async with self._engine.begin() as conn:
            await queries.hooks.delete(conn, hook_id)

    async def test(self, project_id: int, hook_id: int, trigger: str, pipeline_id: int | None) -> None:
        """Queue a test delivery of the latest pipeline (``pipeline_events``) or its first job."""
        await self._one(project_id, hook_id)
        if trigger not in ("pipeline_events", "job_events") or pipeline_id is None:
            raise NotFound("404 Not found")
        event = "Pipeline Hook" if trigger == "pipeline_events" else "Job Hook"
        kind = "pipeline" if trigger == "pipeline_events" else "build"
        async with self._engine.begin() as conn:
            target = pipeline_id
            if kind == "build":
                jobs = await queries.jobs.for_pipeline(conn, pipeline_id)
                if not jobs:
                    raise NotFound("404 Not found")
                target = jobs[0]["id"]
            await queries.hooks.enqueue(conn, hook_id, event, str(uuid.uuid4()), {"object_kind": kind, "id": target})

    async def deliveries(self, project_id: int, hook_id: int) -> list[dict[str, Any]]:
        await self._one(project_id, hook_id)
        async with self._engine.connect() as conn:
            rows = await queries.hooks.deliveries(conn, hook_id)
        return [
            {"id": r["id"], "event": r["event"], "event_uuid": r["event_uuid"], "attempts": r["attempts"],
             "response_status": r["response_status"], "error": r["error"],
             "delivered_at": r["delivered_at"].isoformat() if r["delivered_at"] else None,
             "pending": r["next_attempt_at"] is not None, "created_at": r["created_at"].isoformat()}
            for r in rows
        ]

    async def _one(self, project_id: int, hook_id: int) -> RowMapping:
        async with self._engine.connect() as conn:
            row = await queries.hooks.get(conn, project_id, hook_id)
        if row is None:
            raise NotFound("404 Not found")
        return row

    async def _check_url(self, url: Any) -> None:
        """An http(s) URL, and not into the local network unless ``hook_allow_local``."""
        parsed = urlparse(str(url or ""))
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise InvalidUrl()
        if not self._allow_local and await asyncio.to_thread(is_local, parsed.hostname):
            raise BlockedUrl()


def present(row: RowMapping) -> dict[str, Any]:
    """GitLab's hook object; the token is write-only."""
    return {
        "id": row["id"], "url": row["url"], "name": row["name"], "description": row["description"],
        "project_id": row["project_id"], **{event: row[event] for event in EVENTS},
        "push_events_branch_filter": None, "enable_ssl_verification": row["enable_ssl_verification"],
        "alert_status": "temporarily_disabled" if row["disabled_until"] and row["disabled_until"] > datetime.now(timezone.utc)
        else "executable",
        "disabled_until": _iso(row["disabled_until"]), "url_variables": [], "custom_headers": [],
        "created_at": _iso(row["created_at"]),
    }


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z") if value else None


class HookDeliverer:
    def __init__(
        self,
        engine: AsyncEngine,
        box: SecretBox,
        *,
        server_url: str,
        keepalive_config: keepalive.KeepaliveConfig,
        base_delay: float = 10.0,
        max_attempts: int = 5,
        interval: float = 1.0,
        timeout: float = 10.0,
        pulse: periodic.Pulse | None = None,
    ) -> None:
        self._engine = engine
        self._box = box
        self._server_url = server_url
        self._base_delay, self._max_attempts, self._interval = base_delay, max_attempts, interval
        self._pulse = pulse  # passes only when it says a delivery is due
        transport = httpx.AsyncHTTPTransport(socket_options=keepalive.socket_options(keepalive_config))
        self._client = httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def run(self) -> None:
        await periodic.every(self._interval, self._deliver_all_due, log, "hook delivery pass failed", pulse=self._pulse, name="hooks")

    async def _deliver_all_due(self) -> None:
        while await self.deliver_due():
            pass

    async def deliver_due(self, limit: int = 20) -> int:
        """One pass: send what is due; returns how many were attempted."""
        async with self._engine.begin() as conn:
            due = await queries.hooks.claim_due(conn, limit)
        await asyncio.gather(*(self._attempt(row) for row in due))
        return len(due)

    async def _attempt(self, row: RowMapping) -> None:
        payload = row["payload"]
        try:
            if "object_attributes" not in payload and "build_id" not in payload:
                payload = await self._body(row["project_id"], payload)
            headers = {
                "Content-Type": "application/json", "User-Agent": USER_AGENT, "X-Gitlab-Event": row["event"],
                "X-Gitlab-Instance": self._server_url, "X-Gitlab-Webhook-UUID": row["hook_uuid"],
                "X-Gitlab-Event-UUID": row["event_uuid"], "Idempotency-Key": row["event_uuid"],
            }
            if row["token"]:
                headers["X-Gitlab-Token"] = self._box.decrypt(row["token"])
            response = await self._client.post(row["url"], json=payload, headers=headers)
            status, error = response.status_code, None if response.is_success else f"HTTP {response.status_code}"
        except (httpx.HTTPError, ServerError) as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"
        values: dict[str, Any] = {"payload": payload, "response_status": status, "error": error}
        if error is None:
            values.update(next_attempt_at=None, delivered_at=datetime.now(timezone.utc))
        elif row["attempts"] >= self._max_attempts:
            values["next_attempt_at"] = None  # given up; the log keeps the last error
        else:
            values["next_attempt_at"] = datetime.now(timezone.utc) + timedelta(
                seconds=self._base_delay * 2 ** (row["attempts"] - 1)
            )
        async with self._engine.begin() as conn:
            await queries.hooks.finish(conn, row["id"], values)
            await queries.hooks.record_outcome(conn, row["hook_id"], error is None)

    async def _body(self, project_id: int, event: dict[str, Any]) -> dict[str, Any]:
        async with self._engine.connect() as conn:
            project = await queries.projects.get(conn, project_id)
            if event["object_kind"] == "pipeline":
                pipeline = await queries.pipelines.get(conn, event["id"])
                job = None
            else:
                job = await queries.jobs.get(conn, event["id"])
                pipeline = await queries.pipelines.get(conn, job["pipeline_id"]) if job else None
            if project is None or pipeline is None:
                raise NotFound("404 Not found")
            jobs = await queries.jobs.for_pipeline(conn, pipeline["id"]) if job is None else []
            instance, project_vars = await queries.variables.for_job(conn, project_id)
        status = event.get("status") or (job or pipeline)["status"]
        if job is None:
            body = hookbodies.pipeline_event(pipeline, status, project, jobs, self._server_url)
        else:
            body = hookbodies.job_event(job, status, pipeline, project, self._server_url)
        masked = [self._box.decrypt(v["value"]) for v in [*instance, *project_vars] if v["masked"]]
        return hookbodies.scrub(body, masked)
