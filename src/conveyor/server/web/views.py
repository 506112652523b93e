"""View models: database rows turned into the plain dicts templates show (no queries here)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import RowMapping

from conveyor.server.queue.states import allowed_to_fail, when_of

FINISHED = frozenset({"success", "failed", "canceled", "skipped"})
ACTIVE = frozenset({"created", "waiting_for_resource", "pending", "running", "canceling"})
RETRYABLE = frozenset({"success", "failed", "canceled"})
ONLINE_WITHIN = 7200  # seconds since a runner's last contact for it to count as online (GitLab's 2 h)


def duration(started: datetime | None, finished: datetime | None) -> str:
    """``1m 05s`` style; a running one counts up to now; empty when it never started."""
    if started is None:
        return ""
    seconds = int(((finished or datetime.now(UTC)) - started).total_seconds())
    hours, rest = divmod(max(seconds, 0), 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {seconds:02d}s" if minutes else f"{seconds}s"


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def pipeline(row: RowMapping) -> dict[str, Any]:
    return {
        "id": row["id"],
        "ref": row["ref"],
        "sha": row["sha"],
        "short_sha": row["sha"][:8],
        "status": row["status"],
        "source": row.get("source") or "push",  # CI_PIPELINE_SOURCE
        "triggerer": triggerer(row),
        "created": when(row["created_at"]),
        "duration": duration(row["started_at"], row["finished_at"]),
        "cancelable": row["status"] in ACTIVE or row["status"] in ("manual", "scheduled"),
        "variables": sorted((row["variables"] or {}).keys()),
    }


def triggerer(row: RowMapping) -> str:
    """Who or what started a pipeline: its user's name when the row has one, else what started it
    (a trigger token, a schedule, a parent pipeline), else its source."""
    user = row.get("user") or {}
    if user.get("name") or user.get("login"):
        return str(user.get("name") or user.get("login"))
    for column, label in (("trigger_id", "trigger"), ("schedule_id", "schedule"), ("parent_pipeline_id", "pipeline")):
        if row.get(column):
            return f"{label} #{row[column]}"
    return str(row.get("source") or "push")


def job(row: RowMapping, retries: int = 0) -> dict[str, Any]:
    status = row["status"]
    manner = str(when_of(row["spec"]))
    return {
        "id": row["id"],
        "name": row["name"],
        "stage": row["stage"],
        "stage_idx": row["stage_idx"],
        "status": status,
        "label": "failed (allowed)" if status == "failed" and allowed_to_fail(row) else status,
        "when": manner,
        "needs": row["spec"].get("needs"),
        "duration": duration(row["started_at"], row["finished_at"]),
        "retries": retries,
        "retried": row["retried"],
        "playable": status in ("manual", "scheduled"),
        "retryable": status in RETRYABLE and not row["retried"],
        "cancelable": status in ACTIVE,
        "scheduled_at": when(row["scheduled_at"]),
        "started": when(row["started_at"]),
        "finished": when(row["finished_at"]),
        "failure_reason": row["failure_reason"],
        "exit_code": row["exit_code"],
        "runner_id": row["runner_id"],
        "pipeline_id": row["pipeline_id"],
    }


def jobs(rows: list[RowMapping]) -> list[dict[str, Any]]:
    """The current attempt of each job, with how many earlier attempts were retried."""
    counts = Counter(row["name"] for row in rows if row["retried"])
    return [job(row, counts[row["name"]]) for row in rows if not row["retried"]]


def runner(row: RowMapping, running: list[RowMapping]) -> dict[str, Any]:
    contacted = row["contacted_at"]
    online = contacted is not None and (datetime.now(UTC) - contacted).total_seconds() < ONLINE_WITHIN
    return {
        "id": row["id"],
        "description": row["description"] or f"runner {row['id']}",
        "online": online,
        "paused": row["paused"],
        "version": row["version"] or "",
        "executor": row["executor"] or "",
        "tags": list(row["tag_list"] or []),
        "contacted": when(contacted),
        "jobs": [{"id": j["id"], "name": j["name"], "project_id": j["project_id"]} for j in running],
    }


def artifact(row: RowMapping) -> dict[str, Any]:
    return {"file_type": row["file_type"], "filename": row["filename"], "size": row["size"], "expire": when(row["expire_at"])}
