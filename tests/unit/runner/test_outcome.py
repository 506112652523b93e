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
