from __future__ import annotations

import pytest

from conveyor.protocol.enums import FailureReason
from conveyor.runner.outcome import Verdict, format_duration, map_failure_reason

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("reason", "supported", "expected"),
    [
        (FailureReason.SCRIPT_FAILURE, [], "script_failure"),
        (FailureReason.JOB_EXECUTION_TIMEOUT, [], "job_execution_timeout"),
        (FailureReason.RUNNER_SYSTEM_FAILURE, [], "runner_system_failure"),
        (FailureReason.JOB_CANCELED, ["unknown_failure", "script_failure"], "unknown_failure"),
        (FailureReason.RUNNER_INTERRUPTED, ["runner_interrupted"], "runner_interrupted"),
        (FailureReason.RUNNER_INTERRUPTED, [], "unknown_failure"),
        (FailureReason.IMAGE_PULL_FAILURE, [], "runner_system_failure"),
        (FailureReason.RUNNER_CONFIGURATION_ERROR, [], "script_failure"),
        (None, [], "script_failure"),
    ],
)
def test_failure_reason_mapping(reason: FailureReason | None, supported: list[str], expected: str) -> None:
    assert map_failure_reason(reason, supported) == expected


def test_format_duration() -> None:
    assert [format_duration(s) for s in (3600, 300, 30, 7325)] == ["1h0m0s", "5m0s", "30s", "2h2m5s"]


def test_verdicts() -> None:
    assert Verdict().state == "success" and Verdict().job_status == "success"
    assert Verdict(FailureReason.SCRIPT_FAILURE, 2).state == "failed"
    assert Verdict(FailureReason.JOB_CANCELED).job_status == "canceled"


def test_judge() -> None:
    from conveyor.runner.executors.base import ExitResult
    from conveyor.runner.outcome import judge

    assert judge(ExitResult(0), 60) is None
    assert judge(ExitResult(2), 60) == Verdict(FailureReason.SCRIPT_FAILURE, 2, ": exit code 2")
    timed_out = judge(ExitResult(143, timed_out=True), 3600)
    assert timed_out.failure_reason is FailureReason.JOB_EXECUTION_TIMEOUT
    assert timed_out.message == ": execution took longer than 1h0m0s seconds"
    assert judge(ExitResult(143, canceled=True), 60).failure_reason is FailureReason.JOB_CANCELED


@pytest.mark.parametrize(
    ("when", "succeeded", "runs"),
    [("on_success", True, True), ("on_success", False, False), ("", True, True), ("always", False, True),
     ("on_failure", False, True), ("on_failure", True, False)],
)  # fmt: skip
def test_should_run(when: str, succeeded: bool, runs: bool) -> None:
    from conveyor.protocol.models import Step
    from conveyor.runner.outcome import should_run

    assert should_run(Step(name="release", script=["x"], when=when), succeeded) is runs
