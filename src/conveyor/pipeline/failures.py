"""What a failed job means for its pipeline: retry it, or let it fail without failing the pipeline.

GitLab's rules (``Gitlab::Ci::Build::AutoRetry`` and ``Ci::Build#allowed_to_fail_with_code?``):

* A failed job is retried automatically while it has retries left (``retry:max``, counted over
  the attempts already made under the same name in the pipeline) and its ``failure_reason`` is
  one of ``retry:when`` (``always`` matches every reason). Canceled jobs are never retried.
* ``allow_failure: {exit_codes: [...]}``: the job may fail only with one of those exit codes; with
  another code (or none reported) it fails the pipeline like any other job.
"""

from __future__ import annotations

from collections.abc import Collection

from conveyor.protocol.enums import JobStatus

RETRY_WHEN = frozenset(
    {
        "always",
        "unknown_failure",
        "script_failure",
        "api_failure",
        "stuck_or_timeout_failure",
        "runner_system_failure",
        "runner_unsupported",
        "stale_schedule",
        "job_execution_timeout",
        "archived_failure",
        "unmet_prerequisites",
        "scheduler_failure",
        "data_integrity_failure",
    }
)
MAX_RETRIES = 2


# GitLab's AutoRetry: reasons never retried whatever retry: says, and one retried without it.
RETRY_OVERRIDES = frozenset(
    {"ci_quota_exceeded", "no_matching_runner", "missing_dependency_failure", "forward_deployment_failure",
     "environment_creation_failure"}
)  # fmt: skip
DEFAULT_RETRIES = {"scheduler_failure": 2}


def should_retry(
    status: JobStatus,
    failure_reason: str | None,
    *,
    retry_max: int,
    retry_when: Collection[str],
    retries: int,
    exit_codes: Collection[int] = (),
    exit_code: int | None = None,
) -> bool:
    """Whether a job that just ended with ``status`` gets a new attempt (GitLab's
    ``Gitlab::Ci::Build::AutoRetry``): ``retry:max`` applies when the failure reason is one of
    ``retry:when`` or the exit code one of ``retry:exit_codes``.

    Args:
        failure_reason: GitLab's reason (``script_failure``...); None counts as ``unknown_failure``.
        retry_max: ``retry:max`` (0 to 2; larger values are capped at 2, as GitLab validates).
        retry_when: ``retry:when``; empty means GitLab's default: ``always`` without
            ``exit_codes``, no reason with them.
        retries: how many earlier attempts of this job were already retried.
        exit_codes: ``retry:exit_codes``; ``exit_code`` the job's.
    """
    if status is not JobStatus.FAILED:
        return False
    reason = failure_reason or "unknown_failure"
    reasons = set(retry_when) if exit_codes else (set(retry_when) or {"always"})
    applies = "always" in reasons or reason in reasons or (exit_code is not None and exit_code in exit_codes)
    if reason in RETRY_OVERRIDES:
        allowed = 0
    elif applies:
        allowed = retry_max
    else:
        allowed = DEFAULT_RETRIES.get(reason, 0)
    return retries < min(allowed, MAX_RETRIES)


def allowed_to_fail(allow_failure: bool, exit_codes: Collection[int], exit_code: int | None) -> bool:
    """A job's effective ``allow_failure`` once it has ended with ``exit_code``."""
    if exit_codes:
        return exit_code is not None and exit_code in exit_codes
    return allow_failure
