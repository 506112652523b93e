"""GitLab's entities as JSON (``lib/api/entities``): projects, pipelines, jobs, runners, branches,
commits. Plain functions from rows to dicts, one per entity; routers call them, nothing else."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from conveyor.server.accounts.runner_admin import status_of
from conveyor.server.queue.states import allowed_to_fail, when_of

FINISHED = ("success", "failed", "canceled", "skipped")
_ICON_LABELS = {"success": "passed", "failed": "failed", "canceled": "canceled", "running": "running",
                "pending": "pending", "created": "created", "skipped": "skipped", "manual": "manual action",
                "scheduled": "delayed", "canceling": "canceling", "waiting_for_resource": "waiting for resource"}


def iso(value: datetime | None) -> str | None:
    """GitLab's JSON time: UTC, milliseconds, ``Z``."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def path_of(project: Mapping[str, Any]) -> str:
    """``namespace/name`` (projects are read with their namespace: queries.projects.with_namespace)."""
    namespace = project.get("namespace_path")
    return f"{namespace}/{project['name']}" if namespace else project["name"]


def namespace(project: Mapping[str, Any]) -> dict[str, Any] | None:
    if not project.get("namespace_path"):
        return None
    return {"id": project["namespace_id"], "name": project["namespace_name"], "path": project["namespace_path"],
            "kind": project["namespace_kind"], "full_path": project["namespace_path"], "parent_id": None}  # fmt: skip


def user(found: Mapping[str, Any] | None, base: str) -> dict[str, Any] | None:
    """GitLab's basic user from the ``{id, login, name}`` a pipeline records."""
    if not found:
        return None
    login = found.get("login") or found.get("username") or ""
    return {"id": found.get("id"), "username": login, "name": found.get("name") or login, "state": "active",
            "locked": False, "avatar_url": None, "web_url": f"{base}/{login}"}


def project(row: Mapping[str, Any], base: str, *, simple: bool = False) -> dict[str, Any]:
    path = path_of(row)
    shown: dict[str, Any] = {
        "id": row["id"], "name": row["name"], "path": path.rsplit("/", 1)[-1],
        "name_with_namespace": f"{row['namespace_name']} / {row['name']}" if row.get("namespace_name") else row["name"],
        "path_with_namespace": path,
        "description": row.get("description"), "default_branch": row["default_branch"],
        "created_at": iso(row["created_at"]), "web_url": f"{base}/{path}",
        "http_url_to_repo": f"{base}/{path}.git", "ssh_url_to_repo": None, "readme_url": None,
        "avatar_url": None, "last_activity_at": iso(row["created_at"]), "tag_list": [], "topics": [],
        "star_count": 0, "forks_count": 0, "namespace": namespace(row),
    }
    if simple:
        return shown
    shown.update({
        "visibility": row.get("visibility") or "private", "archived": False, "empty_repo": False,
        "import_url": row["source"], "source": row["source"], "import_status": "finished", "import_error": None,
        "ci_config_path": None, "owner": None, "jobs_enabled": True,
        "_links": {"self": f"{base}/api/v4/projects/{row['id']}", "repo_branches": f"{base}/api/v4/projects/{row['id']}/repository/branches"},
    })
    return shown


def detailed_status(status: str, details_path: str) -> dict[str, Any]:
    label = _ICON_LABELS.get(status, status)
    return {"icon": f"status_{status}", "text": label, "label": label, "group": status, "tooltip": label,
            "has_details": True, "details_path": details_path, "illustration": None,
            "favicon": f"/assets/ci_favicons/favicon_status_{status}.png"}


def _duration(started: datetime | None, finished: datetime | None) -> float | None:
    return (finished - started).total_seconds() if started and finished else None


def pipeline(row: Mapping[str, Any], base: str, path: str, *, full: bool = True) -> dict[str, Any]:
    """A pipeline; ``full`` adds what GitLab's ``PipelineWithMetadata`` shows on get and actions."""
    updated = row.get("updated_at") or max(t for t in (row["created_at"], row["started_at"], row["finished_at"]) if t)
    web_url = f"{base}/{path}/-/pipelines/{row['id']}"
    shown: dict[str, Any] = {
        "id": row["id"], "iid": row.get("iid"), "project_id": row["project_id"], "sha": row["sha"], "ref": row["ref"],
        "status": row["status"], "source": row.get("source"), "name": None,
        "created_at": iso(row["created_at"]), "updated_at": iso(updated), "web_url": web_url,
    }
    if not full:
        return shown
    duration = _duration(row["started_at"], row["finished_at"])
    commit = row.get("commit") or {}
    shown.update({
        "before_sha": row["before_sha"] or "0" * 40, "tag": row["tag"], "yaml_errors": None,
        "user": user(row.get("user"), base), "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]), "committed_at": commit.get("timestamp"),
        "duration": int(duration) if duration is not None else None,
        "queued_duration": _duration(row["created_at"], row["started_at"]), "coverage": None,
        "auto_canceled_by_id": row["auto_canceled_by_id"],
        "detailed_status": detailed_status(row["status"], web_url.removeprefix(base)),
    })
    return shown


def _artifact(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"file_type": row["file_type"], "size": row["size"], "filename": row["filename"], "file_format": row["file_format"]}


def job(row: Mapping[str, Any], base: str, path: str, found: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """A job as GitLab's ``Job`` entity; ``row`` joined with its pipeline and runner
    (``queries.browse``), ``found`` its live artifacts."""
    started, finished = row["started_at"], row["finished_at"]
    archive = next((a for a in found if a["file_type"] == "archive"), None)
    commit = row.get("commit") or {}
    message = commit.get("message") or ""
    runner = None
    if row.get("runner_id") is not None and row.get("runner_description") is not None:
        runner = {"id": row["runner_id"], "description": row["runner_description"], "name": None,
                  "active": not row["runner_paused"], "paused": row["runner_paused"], "is_shared": True,
                  "runner_type": row["runner_type"], "online": status_of({"contacted_at": row["runner_contacted_at"]}) == "online",
                  "status": status_of({"contacted_at": row["runner_contacted_at"]})}
    return {
        "id": row["id"], "name": row["name"], "stage": row["stage"], "status": row["status"],
        "ref": row.get("ref"), "tag": row.get("tag"), "allow_failure": allowed_to_fail(row),
        "when": str(when_of(row["spec"])), "retried": row["retried"], "coverage": row.get("coverage"),
        "created_at": iso(row["created_at"]),
        "started_at": iso(started), "finished_at": iso(finished), "erased_at": iso(row.get("erased_at")),
        "scheduled_at": iso(row["scheduled_at"]), "duration": _duration(started, finished),
        "queued_duration": _duration(row.get("queued_at"), started),
        "failure_reason": row["failure_reason"], "exit_code": row["exit_code"],
        "web_url": f"{base}/{path}/-/jobs/{row['id']}", "user": user(row.get("user"), base),
        "commit": {"id": row.get("sha"), "short_id": (row.get("sha") or "")[:8], "title": message.split("\n", 1)[0],
                   "message": message, "author_name": commit.get("author_name"),
                   "author_email": commit.get("author_email"), "created_at": commit.get("timestamp")},
        "pipeline": {"id": row["pipeline_id"], "project_id": row["project_id"], "ref": row.get("ref"),
                     "sha": row.get("sha"), "status": row.get("pipeline_status")},
        "runner": runner, "tag_list": list((row["spec"] or {}).get("tags") or []),
        "artifacts_file": {"filename": archive["filename"], "size": archive["size"]} if archive else None,
        "artifacts": [_artifact(a) for a in found],
        "artifacts_expire_at": iso(archive["expire_at"]) if archive else None, "archived": False,
        "resource_group": row["resource_group"], "trace_size": row["trace_size"],
        "trace_archived": row["trace_archived"], "trace_checksum": row["trace_checksum"],
        "project": {"ci_job_token_scope_enabled": False},
    }


def runner(
    row: Mapping[str, Any], *, details: bool = False, managers: Sequence[Mapping[str, Any]] = (),
    projects: Sequence[Mapping[str, Any]] = (), groups: Sequence[Mapping[str, Any]] = (), base: str = "",
) -> dict[str, Any]:
    status = status_of(row)
    shown: dict[str, Any] = {
        "id": row["id"], "description": row["description"], "name": None, "runner_type": row["runner_type"],
        "is_shared": row["runner_type"] == "instance_type", "paused": row["paused"], "active": not row["paused"],
        "online": status == "online", "status": status, "ip_address": None,
    }
    if details:
        shown.update({
            "tag_list": list(row["tag_list"]), "run_untagged": row["run_untagged"], "locked": row["locked"],
            "access_level": row["access_level"], "maximum_timeout": row["maximum_timeout"],
            "maintenance_note": None, "contacted_at": iso(row["contacted_at"]), "version": row["version"],
            "revision": next((m["revision"] for m in managers if m["revision"]), None),
            "platform": next((m["platform"] for m in managers if m["platform"]), None),
            "architecture": next((m["architecture"] for m in managers if m["architecture"]), None),
            "projects": [
                {"id": p["id"], "description": None, "name": p["name"], "path": p["name"], "path_with_namespace": path_of(p),
                 "name_with_namespace": f"{p['namespace_name']} / {p['name']}" if p.get("namespace_name") else p["name"]}
                for p in projects
            ],
            "groups": [{"id": g["id"], "name": g["name"], "web_url": f"{base}/groups/{g['path']}"} for g in groups],
        })
    return shown


def commit(found: Mapping[str, Any], base: str, path: str) -> dict[str, Any]:
    message = found["message"]
    return {
        "id": found["id"], "short_id": found["id"][:8], "title": message.split("\n", 1)[0], "message": message,
        "author_name": found["author_name"], "author_email": found["author_email"],
        "authored_date": found["authored_date"], "committer_name": found["committer_name"],
        "committer_email": found["committer_email"], "committed_date": found["committed_date"],
        "created_at": found["committed_date"], "parent_ids": found["parent_ids"], "trailers": {},
        "web_url": f"{base}/{path}/-/commit/{found['id']}", **({"stats": found["stats"]} if "stats" in found else {}),
    }


def branch(found: Mapping[str, Any], base: str, path: str, default: str | None, protected: Sequence[str]) -> dict[str, Any]:
    name = found["name"]
    return {
        "name": name, "merged": False, "protected": name == default or name in protected, "default": name == default,
        "developers_can_push": False, "developers_can_merge": False, "can_push": True,
        "web_url": f"{base}/{path}/-/tree/{name}", "commit": commit(found["commit"], base, path),
    }
