"""pipeline.composite: GitLab's composite status, for stages, needs (dag) and pipelines."""

from __future__ import annotations

import pytest

from conveyor.pipeline import composite
from conveyor.protocol import JobStatus

pytestmark = pytest.mark.unit

S = JobStatus
OK = False  # allow_failure: false
AF = True  # allow_failure: true


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        ([], None),
        ([(S.SUCCESS, OK)], S.SUCCESS),
        ([(S.SKIPPED, OK)], S.SKIPPED),
        ([(S.SUCCESS, OK), (S.SKIPPED, OK)], S.SUCCESS),
        ([(S.FAILED, AF)], S.SUCCESS),
        ([(S.CANCELED, AF), (S.SUCCESS, OK)], S.SUCCESS),
        ([(S.MANUAL, AF)], S.SKIPPED),
        ([(S.MANUAL, AF), (S.SUCCESS, OK)], S.SUCCESS),
        ([(S.MANUAL, OK), (S.SUCCESS, OK)], S.MANUAL),
        ([(S.MANUAL, OK), (S.RUNNING, OK)], S.RUNNING),
        ([(S.CREATED, OK)], S.CREATED),
        ([(S.CREATED, OK), (S.FAILED, AF)], S.CREATED),
        ([(S.CREATED, OK), (S.SUCCESS, OK)], S.RUNNING),
        ([(S.PENDING, OK), (S.CREATED, OK), (S.SKIPPED, OK)], S.PENDING),
        ([(S.PENDING, OK), (S.SUCCESS, OK)], S.RUNNING),
        ([(S.CANCELING, OK)], S.CANCELING),
        ([(S.CANCELING, OK), (S.CANCELED, OK)], S.CANCELING),
        ([(S.CANCELING, OK), (S.RUNNING, OK)], S.RUNNING),
        ([(S.CANCELING, OK), (S.CREATED, OK)], S.RUNNING),
        ([(S.CANCELING, OK), (S.FAILED, OK)], S.CANCELING),
        ([(S.WAITING_FOR_RESOURCE, OK)], S.WAITING_FOR_RESOURCE),
        ([(S.WAITING_FOR_RESOURCE, OK), (S.SUCCESS, OK)], S.WAITING_FOR_RESOURCE),
        ([(S.WAITING_FOR_RESOURCE, OK), (S.PENDING, OK)], S.RUNNING),
        ([(S.WAITING_FOR_RESOURCE, OK), (S.MANUAL, OK)], S.WAITING_FOR_RESOURCE),
        ([(S.SCHEDULED, OK)], S.SCHEDULED),
        ([(S.SCHEDULED, OK), (S.SUCCESS, OK), (S.CREATED, OK)], S.SCHEDULED),
        ([(S.SCHEDULED, OK), (S.MANUAL, OK)], S.MANUAL),
        ([(S.SCHEDULED, OK), (S.MANUAL, AF)], S.SCHEDULED),
        ([(S.SCHEDULED, OK), (S.RUNNING, OK)], S.RUNNING),
        ([(S.SCHEDULED, AF), (S.SUCCESS, OK)], S.SCHEDULED),  # only manual jobs are ever ignored
        ([(S.CANCELED, OK)], S.CANCELED),
        ([(S.CANCELED, OK), (S.SUCCESS, OK), (S.SKIPPED, OK)], S.CANCELED),
        ([(S.FAILED, OK)], S.FAILED),
        ([(S.FAILED, OK), (S.CANCELED, OK)], S.FAILED),
        ([(S.FAILED, OK), (S.CREATED, OK)], S.RUNNING),
    ],
)
def test_stage_and_pipeline_composite(
    jobs: list[tuple[JobStatus, bool]], expected: JobStatus | None
) -> None:
    assert composite(jobs) is expected


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        ([], None),
        ([(S.SUCCESS, OK)], S.SUCCESS),
        ([(S.SKIPPED, OK), (S.SUCCESS, OK)], S.SKIPPED),
        ([(S.MANUAL, AF)], S.SKIPPED),
        ([(S.MANUAL, OK)], S.PENDING),
        ([(S.RUNNING, OK), (S.SUCCESS, OK)], S.PENDING),
        ([(S.CREATED, OK)], S.PENDING),
        ([(S.FAILED, OK), (S.SUCCESS, OK)], S.FAILED),
        ([(S.FAILED, AF), (S.SUCCESS, OK)], S.SUCCESS),
        ([(S.CANCELED, OK)], S.CANCELED),
        ([(S.CANCELING, OK)], S.PENDING),
        ([(S.SCHEDULED, OK), (S.SUCCESS, OK)], S.PENDING),
        ([(S.WAITING_FOR_RESOURCE, OK)], S.PENDING),
    ],
)
def test_needs_composite(jobs: list[tuple[JobStatus, bool]], expected: JobStatus | None) -> None:
    assert composite(jobs, dag=True) is expected
