"""``progress``: which waiting jobs of a pipeline start, wait or are skipped, and its status.

GitLab's rules (``Ci::PipelineProcessing::AtomicProcessingService`` and
``Ci::ProcessBuildService``), applied to a snapshot of job states:

1. Only ``created`` jobs are decided. A job without ``needs`` waits for every job of the earlier
   stages; a job with ``needs`` waits only for those jobs (``needs: []`` waits for nothing).
2. The jobs waited for are summarised by ``status.composite`` (``dag=True`` for needs; no jobs
   counts as success). Until that summary is complete (success, failed, canceled, skipped) the
   job stays ``created``.
3. Then by ``when`` (``Ci::ProcessBuildService``):
   * ``on_success``, ``manual`` and ``delayed``: run on ``success``, or ``skipped`` without needs;
   * ``on_failure``: run on ``failed`` (a failure without ``allow_failure``);
   * ``always``: run on ``success``, ``failed`` or ``skipped``;
   otherwise the job is skipped. "Run" means pending, for ``manual`` jobs becoming ``manual``
   (playable), and for ``delayed`` jobs becoming ``scheduled`` (the server sets the time).
   Whether a pending job must first wait for its ``resource_group`` is the server's business. An optional manual job (``allow_failure``, the default) does not hold
   back later stages; a job that ``needs`` one that has not been played is skipped (see
   ``reset_after_play``).
4. Jobs are decided in stage order and, within a stage, needs first, on the statuses decided so
   far, so one call reaches the fixpoint: skipping a job can unblock or skip the next ones.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field

from conveyor.pipeline.errors import InvalidJobStates
from conveyor.pipeline.status import composite
from conveyor.protocol.enums import COMPLETE_STATUSES, JobStatus, When


@dataclass(frozen=True)
class JobState:
    """What ``progress`` needs to know about one job of a pipeline.

    ``stage_idx``, ``needs``, ``when`` and ``allow_failure`` are the job's ``JobSpec`` values
    (``needs`` None: wait for the earlier stages; a list: wait for those jobs only).
    """

    name: str
    stage_idx: int
    needs: list[str] | None
    when: When
    allow_failure: bool
    status: JobStatus


@dataclass(frozen=True)
class Progress:
    """The transitions to apply, each list in stage order then input order.

    ``enqueue``: created jobs to make pending now. ``skip``: created jobs that will never run.
    ``manual``: created manual jobs whose turn has come, to make ``manual`` (playable); a caller
    that leaves them ``created`` gets them again on the next call, and ``status`` is the same.
    ``schedule``: created delayed jobs whose turn has come, to make ``scheduled`` (their timer
    starts now); ``status`` counts them as scheduled.
    ``status``: the pipeline's composite status once these transitions are applied (``manual``
    means GitLab's "blocked": a manual job without ``allow_failure`` waits to be played).
    """

    enqueue: list[str]
    skip: list[str]
    status: JobStatus
    manual: list[str] = field(default_factory=list)
    schedule: list[str] = field(default_factory=list)


_RUN_ON: dict[When, tuple[frozenset[JobStatus], frozenset[JobStatus]]] = {
    # when: (statuses that let it run without needs, ... with needs)
    When.ON_SUCCESS: (
        frozenset({JobStatus.SUCCESS, JobStatus.SKIPPED}),
        frozenset({JobStatus.SUCCESS}),
    ),
    When.MANUAL: (
        frozenset({JobStatus.SUCCESS, JobStatus.SKIPPED}),
        frozenset({JobStatus.SUCCESS}),
    ),
    When.DELAYED: (
        frozenset({JobStatus.SUCCESS, JobStatus.SKIPPED}),
        frozenset({JobStatus.SUCCESS}),
    ),
    When.ON_FAILURE: (frozenset({JobStatus.FAILED}), frozenset({JobStatus.FAILED})),
    When.ALWAYS: (
        frozenset({JobStatus.SUCCESS, JobStatus.FAILED, JobStatus.SKIPPED}),
        frozenset({JobStatus.SUCCESS, JobStatus.FAILED, JobStatus.SKIPPED}),
    ),
}


_RUN_AS = {When.MANUAL: JobStatus.MANUAL, When.DELAYED: JobStatus.SCHEDULED}


def progress(jobs: Sequence[JobState]) -> Progress:
    """Decide every ``created`` job that can be decided now. Pure and idempotent.

    Needs naming jobs that are not in ``jobs`` are ignored, as GitLab ignores needs of jobs that
    were not added. Raises ``InvalidJobStates`` for duplicate names, a need on a later stage, or
    a needs cycle.
    """
    by_name = {job.name: job for job in jobs}
    if len(by_name) != len(jobs):
        raise InvalidJobStates("duplicate job names")
    status = {job.name: job.status for job in jobs}
    decided: dict[str, JobStatus] = {}
    earlier: list[tuple[JobStatus, bool]] = []  # every job of the stages before `stage`
    current: list[tuple[JobStatus, bool]] = []
    stage: int | None = None
    before: JobStatus = JobStatus.SUCCESS
    for job in _processing_order(jobs, by_name):
        if job.stage_idx != stage:
            earlier += current
            current, stage = [], job.stage_idx
            before = composite(earlier) or JobStatus.SUCCESS
        if status[job.name] is JobStatus.CREATED:
            outcome = _decide(job, before, status, by_name)
            if outcome is not None:
                status[job.name] = decided[job.name] = outcome
        current.append((status[job.name], job.allow_failure))

    def names(outcome: JobStatus) -> list[str]:
        return [job.name for job in sorted(jobs, key=_stage) if decided.get(job.name) is outcome]

    return Progress(
        enqueue=names(JobStatus.PENDING),
        skip=names(JobStatus.SKIPPED),
        manual=names(JobStatus.MANUAL),
        schedule=names(JobStatus.SCHEDULED),
        status=composite((status[j.name], j.allow_failure) for j in jobs) or JobStatus.SKIPPED,
    )


def reset_after_play(jobs: Sequence[JobState], played: str) -> list[str]:
    """Skipped jobs to set back to ``created`` when the manual job ``played`` is started.

    As GitLab's ``Ci::ResetSkippedJobsService``: every skipped job of a later stage, and every
    skipped job that needs ``played`` directly or through other needs. Call ``progress`` again
    after applying both changes.
    """
    by_name = {job.name: job for job in jobs}
    if played not in by_name:
        raise InvalidJobStates(f"no job named {played}")
    start = by_name[played]
    dependents: set[str] = set()
    frontier = [played]
    while frontier:
        name = frontier.pop()
        for job in jobs:
            if job.needs and name in job.needs and job.name not in dependents:
                dependents.add(job.name)
                frontier.append(job.name)
    return [
        job.name
        for job in sorted(jobs, key=_stage)
        if job.status is JobStatus.SKIPPED
        and (job.stage_idx > start.stage_idx or job.name in dependents)
    ]


def _stage(job: JobState) -> int:
    return job.stage_idx


def _decide(
    job: JobState, before: JobStatus, status: dict[str, JobStatus], by_name: dict[str, JobState]
) -> JobStatus | None:
    """The job's new status, or None while what it waits for is not complete."""
    if job.needs is None:
        waited_for = before
    else:
        needed = [(status[n], by_name[n].allow_failure) for n in job.needs if n in by_name]
        waited_for = composite(needed, dag=True) or JobStatus.SUCCESS
    if waited_for not in COMPLETE_STATUSES:
        return None
    stage_based, dag = _RUN_ON.get(job.when, (frozenset(), frozenset()))
    if waited_for not in (stage_based if job.needs is None else dag):
        return JobStatus.SKIPPED
    return _RUN_AS.get(job.when, JobStatus.PENDING)


def _processing_order(jobs: Sequence[JobState], by_name: dict[str, JobState]) -> list[JobState]:
    """Stage order, then input order, except that a job comes after the jobs it needs."""
    position = {job.name: idx for idx, job in enumerate(jobs)}
    waiting_on: dict[str, int] = {}
    dependents: dict[str, list[str]] = {job.name: [] for job in jobs}
    ready: list[tuple[int, int, str]] = []
    for job in jobs:
        needed = [n for n in dict.fromkeys(job.needs or []) if n in by_name]
        for name in needed:
            if by_name[name].stage_idx > job.stage_idx:
                raise InvalidJobStates(f"{job.name} needs {name}, which is in a later stage")
            dependents[name].append(job.name)
        waiting_on[job.name] = len(needed)
        if not needed:
            heapq.heappush(ready, (job.stage_idx, position[job.name], job.name))
    order: list[JobState] = []
    while ready:
        _, _, name = heapq.heappop(ready)
        order.append(by_name[name])
        for dependent in dependents[name]:
            waiting_on[dependent] -= 1
            if not waiting_on[dependent]:
                entry = (by_name[dependent].stage_idx, position[dependent], dependent)
                heapq.heappush(ready, entry)
    if len(order) != len(jobs):
        raise InvalidJobStates("the needs of these jobs form a cycle")
    return order
