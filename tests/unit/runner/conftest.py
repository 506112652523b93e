"""Unit tests of conveyor.runner: no sockets; real files, real bash and git subprocesses."""

from __future__ import annotations

import pytest


def make_job(
    *,
    job_id: int = 1001,
    variables: list[dict[str, object]] | None = None,
    script: list[str] | None = None,
    after_script: list[str] | None = None,
    repo_url: str = "https://gitlab-ci-token:glcbt-JOBTOKEN@gitlab.example.com/group/demo.git",
    sha: str = "69b18e5ed3610cf646119c3e38f462c64ec462b7",
    **extra: object,
):
    """A JobPayload shaped like GitLab's (runner-api.md example 4)."""
    from conveyor.protocol.models import JobPayload

    steps = [{"name": "script", "script": script or ["echo hello"], "timeout": 3600, "when": "on_success",
              "allow_failure": False}]  # fmt: skip
    if after_script:
        steps.append({"name": "after_script", "script": after_script, "timeout": 3600, "when": "always",
                      "allow_failure": True})  # fmt: skip
    payload = {
        "id": job_id,
        "token": "glcbt-JOBTOKEN",
        "job_info": {"id": job_id, "name": "build", "stage": "test", "project_id": 7, "project_name": "demo"},
        "git_info": {"repo_url": repo_url, "ref": "main", "sha": sha, "ref_type": "branch",
                     "refspecs": ["+refs/heads/main:refs/remotes/origin/main"]},  # fmt: skip
        "runner_info": {"timeout": 3600},
        "variables": variables or [],
        "steps": steps,
        "features": {"trace_sections": True, "failure_reasons": ["script_failure", "unknown_failure"]},
        **extra,
    }
    return JobPayload.model_validate(payload)


@pytest.fixture
def job_factory():
    return make_job
