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


def should_retry(
    status: JobStatus, failure_reason: str | None, *, retry_max: int, retry_when: Collection[str], retries: int
) -> bool:
    """Whether a job that just ended with ``status`` gets a new attempt.

    Args:
        failure_reason: GitLab's reason (``script_failure``...); None counts as ``unknown_failure``.
        retry_max: ``retry:max`` (0 to 2; larger values are capped at 2, as GitLab validates).
        retry_when: ``retry:when``; an empty list means GitLab's default, ``always``.
        retries: how many earlier attempts of this job were already retried.
    """
    if status is not JobStatus.FAILED:
        return False
    if retries >= min(retry_max, MAX_RETRIES):
        return False
    reasons = set(retry_when) or {"always"}
    return "always" in reasons or (failure_reason or "unknown_failure") in reasons


def allowed_to_fail(allow_failure: bool, exit_codes: Collection[int], exit_code: int | None) -> bool:
    """A job's effective ``allow_failure`` once it has ended with ``exit_code``."""
    if exit_codes:
        return exit_code is not None and exit_code in exit_codes
    return allow_failure
