"""Build the 201 job payload (runner-api.md 3.5) with GitLab's exact JSON types."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


from conveyor.server.queue import predefined
from conveyor.protocol import (
    FailureReason,
    GitInfo,
    JobFeatures,
    JobInfo,
    JobPayload,
    JobSpec,
    RunnerInfoPayload,
    Step,
    Variable,
)
from conveyor.server.variables.assembly import PipelineFacts

ACCEPTED_FAILURE_REASONS = [
    reason.value for reason in FailureReason if reason is not FailureReason.JOB_CANCELED
]


def build(
    job: Mapping[str, Any],
    project: Mapping[str, Any],
    pipeline: Mapping[str, Any],
    *,
    dependencies: Sequence[Mapping[str, Any]] = (),
    token: str,
    repo_url: str,
    server_url: str,
    default_timeout: int,
    facts: PipelineFacts | None = None,
    runner: Mapping[str, Any] | None = None,
) -> JobPayload:
    spec = JobSpec.model_validate(job["spec"])
    timeout = spec.timeout or default_timeout
    steps = [Step(name="script", script=spec.script, timeout=timeout, when="on_success", allow_failure=False)]
    if spec.after_script:
        steps.append(Step(name="after_script", script=spec.after_script, timeout=timeout, when="always", allow_failure=True))
    ref = pipeline["ref"]
    facts = facts or PipelineFacts.of(pipeline)
    refspec = f"+refs/tags/{ref}:refs/tags/{ref}" if facts.tag else f"+refs/heads/{ref}:refs/remotes/origin/{ref}"
    return JobPayload(
        id=job["id"],
        token=token,
        job_info=JobInfo(
            id=job["id"],
            name=job["name"],
            stage=job["stage"],
            project_id=project["id"],
            project_name=project["name"],
            project_full_path=project["name"],
            pipeline_id=pipeline["id"],
        ),
        git_info=GitInfo(
            repo_url=repo_url,
            ref=ref,
            sha=pipeline["sha"],
            before_sha=pipeline.get("before_sha") or "0" * 40,
            ref_type="tag" if facts.tag else "branch",
            refspecs=[refspec],
            protected=bool(job["protected"]),
        ),
        runner_info=RunnerInfoPayload(timeout=timeout),
        variables=_variables(job, project, pipeline, spec, token, repo_url, server_url, timeout, runner, facts, dependencies),
        steps=steps,
        image=spec.image,
        services=list(spec.services),
        artifacts=list(spec.artifacts),
        cache=_cache(spec.cache, protected=bool(job["protected"])),
        # the running job's own token downloads them (GitLab's ci_expose_running_job_token_for_artifacts)
        dependencies=[
            {"id": d["id"], "token": token, "name": d["name"],
             "artifacts_file": {"filename": d["filename"], "size": d["size"]}}
            for d in dependencies if d.get("filename")
        ],
        features=JobFeatures(trace_sections=True, failure_reasons=ACCEPTED_FAILURE_REASONS),
    )


def _cache(caches: Sequence[Mapping[str, Any]], *, protected: bool) -> list[dict[str, Any]]:
    """GitLab's cache keys: ``key`` (default ``default``) plus ``-protected``/``-non_protected``,
    so protected refs never restore a cache an unprotected branch could have poisoned."""
    suffix = "protected" if protected else "non_protected"
    result = []
    for cache in caches:
        entry = dict(cache)
        entry["key"] = f"{entry.get('key') or 'default'}-{suffix}"
        entry["fallback_keys"] = [f"{key}-{suffix}" for key in entry.get("fallback_keys") or []]
        result.append(entry)
    return result


def _variables(
    job: Mapping[str, Any],
    project: Mapping[str, Any],
    pipeline: Mapping[str, Any],
    spec: JobSpec,
    token: str,
    repo_url: str,
    server_url: str,
    timeout: int,
    runner: Mapping[str, Any] | None,
    facts: PipelineFacts,
    dependencies: Sequence[Mapping[str, Any]],
) -> list[Variable]:
    """Predefined variables (``predefined.py``), the job's YAML ones, the dotenv reports of the
    jobs it takes artifacts from (a later job wins), then instance, project and pipeline
    variables (later wins: GitLab's precedence, server/variables/assembly.py)."""
    variables = predefined.job_variables(
        job, project, pipeline, spec, token=token, repo_url=repo_url, server_url=server_url,
        timeout=timeout, runner=runner,
    )
    raw = set(spec.raw_variables)  # expand: false
    variables += [Variable(key=k, value=v, raw=True if k in raw else None) for k, v in spec.variables.items()]
    dotenv: dict[str, str] = {}
    for dependency in dependencies:
        dotenv.update(dependency.get("dotenv_variables") or {})
    variables += [Variable(key=k, value=str(v)) for k, v in dotenv.items()]
    return variables + facts.variables
