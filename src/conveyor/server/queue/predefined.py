"""The predefined variables the server puts in a job's payload (spec section 13, GitLab's
``Gitlab::Ci::Variables::Builder``), with GitLab's values.

The pre-pipeline ones (``CI_PROJECT_*``, ``CI_SERVER_*``, ``CI_COMMIT_*``,
``CI_PIPELINE_SOURCE``...) come from the same ``ciconfig.PipelineContext.predefined`` that
``include``, ``workflow`` and ``rules`` saw when the pipeline was created, rebuilt from the
stored pipeline; the pipeline-level ones from ``pipeline.predefined_variables`` (job name, stage,
node index, environment); the job-only ones (``CI_JOB_ID``, ``CI_JOB_URL``, ``CI_JOB_TOKEN``,
``CI_JOB_STARTED_AT``, ``CI_PIPELINE_ID``, ``CI_RUNNER_*``, ``GITLAB_USER_*``...) are made here.
What only the runner knows (``CI_PROJECT_DIR``, ``CI_BUILDS_DIR``, ``CI_CONCURRENT_ID``,
``CI_RUNNER_VERSION``, ``CI_JOB_STATUS``...) the runner adds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from conveyor import ciconfig, pipeline
from conveyor.protocol import JobSpec, Variable

ZERO_SHA = "0" * 40
# who a pipeline is made by until accounts exist: Conveyor's admin is GitLab's root
ROOT_USER = {"id": 1, "login": "root", "name": "Administrator", "email": ""}


def context(project: Mapping[str, Any], row: Mapping[str, Any], server_url: str) -> ciconfig.PipelineContext:
    """The pipeline's ``PipelineContext`` from its stored row (``pipeline_*`` facts) and project."""
    commit = row.get("commit") or {}
    ref = row["ref"]
    default_branch = project.get("default_branch") or ref
    author = None
    if commit.get("author_name") is not None:
        author = f"{commit['author_name']} <{commit.get('author_email', '')}>"
    return ciconfig.PipelineContext(
        source=row.get("source") or "push",
        ref=ref,
        sha=row["sha"],
        before_sha=row.get("before_sha") or ZERO_SHA,
        tag=bool(row.get("tag")),
        default_branch=default_branch,
        protected=ref == default_branch or ref in (project.get("protected_refs") or []),
        project_path=project["name"],
        project_id=project["id"],
        server_url=server_url,
        commit_message=commit.get("message", ""),
        commit_author=author,
        commit_timestamp=commit.get("timestamp"),
        tag_message=commit.get("tag_message"),
        pipeline_created_at=_iso(row.get("created_at")),
    )


def job_variables(
    job: Mapping[str, Any],
    project: Mapping[str, Any],
    row: Mapping[str, Any],
    spec: JobSpec,
    *,
    token: str,
    repo_url: str,
    server_url: str,
    timeout: int,
    runner: Mapping[str, Any] | None = None,
) -> list[Variable]:
    """Every predefined variable the server owns, in GitLab's order of levels (instance and
    project, pipeline, job); the secret ones not public (``CI_JOB_TOKEN`` also masked)."""
    facts = context(project, row, server_url)
    values = facts.predefined()
    project_url = values["CI_PROJECT_URL"]
    values.update(
        {
            "CI_SERVER": "yes",
            "CONVEYOR": "true",
            "CI_PIPELINE_ID": str(row["id"]),
            "CI_PIPELINE_URL": f"{project_url}/-/pipelines/{row['id']}",
            "CI_JOB_ID": str(job["id"]),
            "CI_JOB_URL": f"{project_url}/-/jobs/{job['id']}",
            "CI_JOB_TIMEOUT": str(timeout),
            **pipeline.predefined_variables(spec),
        }
    )
    if row.get("iid") is not None:
        values["CI_PIPELINE_IID"] = str(row["iid"])
    if (started := _iso(job.get("started_at"))) is not None:
        values["CI_JOB_STARTED_AT"] = started
    if spec.when == "manual":
        values["CI_JOB_MANUAL"] = "true"  # a manual job runs only once someone played it
    if spec.image and spec.image.get("name"):
        values["CI_JOB_IMAGE"] = str(spec.image["name"])
    if runner is not None:
        values["CI_RUNNER_ID"] = str(runner["id"])
        values["CI_RUNNER_DESCRIPTION"] = str(runner.get("description") or "")
        values["CI_RUNNER_TAGS"] = json.dumps(list(runner.get("tag_list") or []), separators=(", ", ": "))
    values.update(user_variables(row.get("user")))
    variables = [Variable(key=key, value=value) for key, value in values.items()]
    variables.append(Variable(key="CI_JOB_TOKEN", value=token, public=False, masked=True))
    variables.append(Variable(key="CI_REPOSITORY_URL", value=repo_url, public=False))
    return variables


def user_variables(user: Mapping[str, Any] | None) -> dict[str, str]:
    """``GITLAB_USER_*`` of the pipeline's ``user`` (``{id, username or login, name, email}``,
    whoever made it once accounts exist); GitLab's ``root`` when the pipeline names none."""
    user = user or ROOT_USER
    return {
        "GITLAB_USER_ID": str(user.get("id", "")),
        "GITLAB_USER_LOGIN": str(user.get("username") or user.get("login") or ""),
        "GITLAB_USER_NAME": str(user.get("name", "")),
        "GITLAB_USER_EMAIL": str(user.get("email") or ""),
    }


def _iso(value: Any) -> str | None:
    """GitLab's ``iso8601`` of a time: UTC, seconds, ``Z``."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
