"""Stored job rows as progression sees them: when, effective allow_failure, pipeline status, and
the conservative interruptible rule."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.protocol import JobSpec, JobStatus, When
from conveyor.server.queue import interrupt, states

pytestmark = pytest.mark.unit


def row(name: str = "job", status: str = "created", exit_code: int | None = None, **spec: Any) -> dict[str, Any]:
    dumped = JobSpec(name=name, stage="test", stage_idx=0, script=["x"], **spec).model_dump(mode="json")
    return {"name": name, "stage_idx": 0, "status": status, "exit_code": exit_code, "spec": dumped}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, When.ON_SUCCESS),
        ({"when": When.MANUAL}, When.MANUAL),
        ({"when": When.DELAYED, "start_in": 30}, When.DELAYED),
        ({"start_in": 30}, When.DELAYED),  # the YAML loader may store delayed as on_success + timer
        ({"when": When.ALWAYS}, When.ALWAYS),
    ],
)
def test_when_of(spec: dict[str, Any], expected: When) -> None:
    assert states.when_of(row(**spec)["spec"]) is expected
    assert states.job_state(row(**spec)).when is expected


@pytest.mark.parametrize(
    ("status", "exit_code", "spec", "allowed", "pipeline"),
    [
        ("failed", 3, {"allow_failure_exit_codes": [3]}, True, JobStatus.SUCCESS),
        ("failed", 1, {"allow_failure_exit_codes": [3]}, False, JobStatus.FAILED),
        ("failed", None, {"allow_failure_exit_codes": [3]}, False, JobStatus.FAILED),
        ("failed", 1, {"allow_failure": True}, True, JobStatus.SUCCESS),
        ("canceled", None, {"allow_failure": True}, True, JobStatus.SUCCESS),
        ("failed", 1, {}, False, JobStatus.FAILED),
    ],
)
def test_effective_allow_failure_decides_the_pipeline(
    status: str, exit_code: int | None, spec: dict[str, Any], allowed: bool, pipeline: JobStatus
) -> None:
    failed = row("lint", status, exit_code, **spec)
    assert states.allowed_to_fail(failed) is allowed
    assert states.job_state(failed).allow_failure is allowed
    assert states.status_of([failed, row("unit", "success")]) is pipeline


def test_status_of_no_jobs_is_skipped() -> None:
    assert states.status_of([]) is JobStatus.SKIPPED


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        ([("running", True), ("created", False)], True),  # not started counts as interruptible
        ([("pending", False), ("manual", False), ("scheduled", False)], True),
        ([("success", True), ("running", True)], True),
        ([("running", False)], False),
        ([("canceling", False)], False),
        ([("success", False), ("pending", True)], False),  # it started, even if it has ended
        ([("failed", False)], False),
        ([("canceled", False), ("skipped", False)], True),
    ],
)
def test_conservative_interruptible(jobs: list[tuple[str, bool]], expected: bool) -> None:
    rows = [row(f"j{i}", status, interruptible=flag) for i, (status, flag) in enumerate(jobs)]
    assert interrupt.interruptible(rows) is expected
