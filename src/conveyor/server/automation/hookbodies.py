"""GitLab's pipeline and job event bodies (rest-api.md 4), from the rows as they are when sent,
with the status the event recorded. Masked variable values are replaced in the finished body."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from conveyor.server.queue.states import allowed_to_fail, when_of

MASK = "[MASKED]"


def _hook_time(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if value else None


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z") if value else None


def _duration(row: Mapping[str, Any]) -> float | None:
    started, finished = row["started_at"], row["finished_at"]
    return (finished - started).total_seconds() if started and finished else None


def project_body(project: Mapping[str, Any], server_url: str) -> dict[str, Any]:
    web_url = f"{server_url}/{project['name']}"
    return {
        "id": project["id"], "name": project["name"], "description": None, "web_url": web_url,
        "avatar_url": None, "git_ssh_url": None, "git_http_url": f"{web_url}.git",
        "namespace": project["name"].rpartition("/")[0], "visibility_level": 0,
        "path_with_namespace": project["name"], "default_branch": project["default_branch"],
    }


def pipeline_event(
    pipeline: Mapping[str, Any], status: str, project: Mapping[str, Any], jobs: Sequence[Mapping[str, Any]], server_url: str
) -> dict[str, Any]:
    stages = list(dict.fromkeys(j["stage"] for j in sorted(jobs, key=lambda j: j["stage_idx"])))
    duration = _duration(pipeline)
    return {
        "object_kind": "pipeline",
        "object_attributes": {
            "id": pipeline["id"], "iid": pipeline["id"], "name": None, "ref": pipeline["ref"], "tag": pipeline["tag"],
            "sha": pipeline["sha"], "before_sha": pipeline["before_sha"] or "0" * 40, "source": pipeline["source"],
            "status": status, "detailed_status": status, "stages": stages,
            "created_at": _hook_time(pipeline["created_at"]), "finished_at": _hook_time(pipeline["finished_at"]),
            "duration": int(duration) if duration is not None else None, "queued_duration": None,
            "variables": [{"key": k, "value": str(v)} for k, v in (pipeline["variables"] or {}).items()],
            "url": f"{server_url}/{project['name']}/-/pipelines/{pipeline['id']}",
        },
        "merge_request": None,
        "user": _user(),
        "project": project_body(project, server_url),
        "commit": {"id": pipeline["sha"], "message": None, "title": None, "timestamp": None,
                   "url": f"{server_url}/{project['name']}/-/commit/{pipeline['sha']}", "author": None},
        "source_pipeline": None,
        "builds": [_build(job) for job in jobs],
    }


def job_event(
    job: Mapping[str, Any], status: str, pipeline: Mapping[str, Any], project: Mapping[str, Any], server_url: str
) -> dict[str, Any]:
    duration = _duration(job)
    return {
        "object_kind": "build", "ref": pipeline["ref"], "tag": pipeline["tag"],
        "before_sha": pipeline["before_sha"] or "0" * 40, "sha": pipeline["sha"],
        "build_id": job["id"], "build_name": job["name"], "build_stage": job["stage"], "build_status": status,
        "build_created_at": _iso(job["created_at"]), "build_started_at": _iso(job["started_at"]),
        "build_finished_at": _iso(job["finished_at"]), "build_duration": duration, "build_queued_duration": None,
        "build_allow_failure": allowed_to_fail(job), "build_failure_reason": job["failure_reason"] or "unknown_failure",
        "retries_count": 0, "pipeline_id": pipeline["id"], "project_id": project["id"], "project_name": project["name"],
        "user": _user(),
        # GitLab's documented quirk: commit.id is the pipeline's id
        "commit": {"id": pipeline["id"], "name": None, "sha": pipeline["sha"], "message": None, "author_name": None,
                   "author_email": None, "status": pipeline["status"], "duration": None,
                   "started_at": _iso(pipeline["started_at"]), "finished_at": _iso(pipeline["finished_at"])},
        "repository": {"name": project["name"], "url": f"{server_url}/{project['name']}.git", "description": None,
                       "homepage": f"{server_url}/{project['name']}", "git_http_url": f"{server_url}/{project['name']}.git",
                       "git_ssh_url": None, "visibility_level": 0},
        "project": project_body(project, server_url),
        "runner": {"id": job["runner_id"]} if job["runner_id"] else None,
        "environment": None, "source_pipeline": None,
    }


def _build(job: Mapping[str, Any]) -> dict[str, Any]:
    when = str(when_of(job["spec"]))
    return {
        "id": job["id"], "stage": job["stage"], "name": job["name"], "status": job["status"],
        "created_at": _hook_time(job["created_at"]), "started_at": _hook_time(job["started_at"]),
        "finished_at": _hook_time(job["finished_at"]), "duration": _duration(job), "queued_duration": None,
        "failure_reason": job["failure_reason"], "when": when, "manual": when == "manual",
        "allow_failure": allowed_to_fail(job), "user": _user(), "runner": {"id": job["runner_id"]} if job["runner_id"] else None,
        "artifacts_file": {"filename": None, "size": None}, "environment": None,
    }


def _user() -> dict[str, Any]:
    return {"id": 1, "name": "Administrator", "username": "root", "avatar_url": None, "email": "[REDACTED]"}


def scrub(body: dict[str, Any], secrets: Iterable[str]) -> dict[str, Any]:
    """``body`` with every masked value replaced by ``[MASKED]`` (longest first)."""
    text = json.dumps(body)
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(json.dumps(secret)[1:-1], MASK)
    return json.loads(text)
