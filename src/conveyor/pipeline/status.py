"""Composite status of a set of jobs, as GitLab computes it (``Gitlab::Ci::Status::Composite``).

Used three ways: the status of all jobs of the earlier stages (what a job without ``needs:``
waits for), of a job's needs (``dag=True``), and of the whole pipeline.

Each job is first classified: a failed or canceled job with ``allow_failure`` counts as
``success_with_warnings``; a manual job with ``allow_failure`` (an optional manual job) as
``ignored``. Then the first matching rule below gives the result, in GitLab's order: active work
(``running``/``pending``) wins over ``waiting_for_resource``, which wins over the blocked states
(``manual``, then ``scheduled``), then ``created`` (more to come: ``running``), then ``canceling``
(only jobs being canceled are left), and anything else is ``failed``.
"""

from __future__ import annotations

from collections.abc import Iterable

from conveyor.protocol.enums import JobStatus

_WARNING = "success_with_warnings"
_IGNORED = "ignored"


def composite(jobs: Iterable[tuple[JobStatus, bool]], *, dag: bool = False) -> JobStatus | None:
    """The composite of ``(status, allow_failure)`` pairs; None for no jobs.

    With ``dag=True`` (a job's needs): ``skipped`` if any need was skipped or is an optional
    manual job that has not run, else ``pending`` (meaning "wait") until every need is complete.
    """
    keys = {_classify(status, allow_failure) for status, allow_failure in jobs}
    if not keys:
        return None

    def only(*names: str) -> bool:
        return keys <= set(names)

    def any_of(*names: str) -> bool:
        return not keys.isdisjoint(names)

    if dag and any_of("skipped", _IGNORED):
        return JobStatus.SKIPPED
    if dag and not only("success", "failed", "canceled", "skipped", _WARNING):
        return JobStatus.PENDING
    if only("skipped", _IGNORED):
        return JobStatus.SKIPPED
    if only("success", "skipped", _WARNING, _IGNORED):
        return JobStatus.SUCCESS
    if only("created", _WARNING, _IGNORED):
        return JobStatus.CREATED
    if only("canceled", "success", "skipped", _WARNING, _IGNORED):
        return JobStatus.CANCELED
    if only("pending", "created", "skipped", _WARNING, _IGNORED):
        return JobStatus.PENDING
    if any_of("running", "pending"):
        return JobStatus.RUNNING
    if any_of("waiting_for_resource"):
        return JobStatus.WAITING_FOR_RESOURCE
    if any_of("manual"):
        return JobStatus.MANUAL  # a blocking manual job waits: GitLab shows the pipeline "blocked"
    if any_of("scheduled"):
        return JobStatus.SCHEDULED
    if any_of("created"):
        return JobStatus.RUNNING
    if any_of("canceling"):
        return JobStatus.CANCELING
    return JobStatus.FAILED


def _classify(status: JobStatus, allow_failure: bool) -> str:
    if allow_failure and status in (JobStatus.FAILED, JobStatus.CANCELED):
        return _WARNING
    if allow_failure and status is JobStatus.MANUAL:
        return _IGNORED
    return str(status)
