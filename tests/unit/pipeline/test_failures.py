"""pipeline.should_retry and allowed_to_fail: GitLab's auto-retry and allow_failure:exit_codes."""

from __future__ import annotations

import pytest

from conveyor.pipeline import RETRY_WHEN, allowed_to_fail, should_retry
from conveyor.protocol import FailureReason, JobStatus

pytestmark = pytest.mark.unit

S = JobStatus


@pytest.mark.parametrize(
    ("status", "reason", "retry_max", "retry_when", "retries", "expected"),
    [
        (S.FAILED, "script_failure", 1, ["always"], 0, True),
        (S.FAILED, "script_failure", 1, ["always"], 1, False),  # the one retry was used
        (S.FAILED, "script_failure", 2, ["always"], 1, True),
        (S.FAILED, "script_failure", 2, ["always"], 2, False),
        (S.FAILED, "script_failure", 5, ["always"], 2, False),  # capped at GitLab's max of 2
        (S.FAILED, "script_failure", 0, ["always"], 0, False),
        (S.FAILED, "script_failure", 2, [], 0, True),  # no when: GitLab's default, always
        (S.FAILED, "runner_system_failure", 2, ["runner_system_failure"], 0, True),
        (S.FAILED, "script_failure", 2, ["runner_system_failure"], 0, False),
        (S.FAILED, "script_failure", 2, ["runner_system_failure", "script_failure"], 0, True),
        (S.FAILED, "stuck_or_timeout_failure", 1, ["stuck_or_timeout_failure"], 0, True),
        (S.FAILED, None, 1, ["unknown_failure"], 0, True),  # no reason reported: unknown
        (S.FAILED, None, 1, ["script_failure"], 0, False),
        (S.CANCELED, "script_failure", 2, ["always"], 0, False),  # canceled jobs never retry
        (S.SUCCESS, None, 2, ["always"], 0, False),
    ],
)
def test_should_retry(
    status: JobStatus, reason: str | None, retry_max: int, retry_when: list[str], retries: int, expected: bool
) -> None:
    assert should_retry(status, reason, retry_max=retry_max, retry_when=retry_when, retries=retries) is expected


@pytest.mark.parametrize(
    ("reason", "retry_when", "exit_codes", "exit_code", "expected"),
    [
        ("script_failure", [], [137], 137, True),  # exit_codes alone: that code retries
        ("script_failure", [], [137], 1, False),  # and no other (when defaults to none with them)
        ("script_failure", [], [137], None, False),
        ("runner_system_failure", ["runner_system_failure"], [137], 1, True),  # either matches
        ("script_failure", ["runner_system_failure"], [137], 137, True),
        ("missing_dependency_failure", ["always"], [], 1, False),  # GitLab never retries these
        ("scheduler_failure", ["script_failure"], [], None, True),  # retried twice by default
    ],
)
def test_should_retry_with_exit_codes(
    reason: str, retry_when: list[str], exit_codes: list[int], exit_code: int | None, expected: bool
) -> None:
    found = should_retry(S.FAILED, reason, retry_max=1, retry_when=retry_when, retries=0,
                         exit_codes=exit_codes, exit_code=exit_code)  # fmt: skip
    assert found is expected


def test_retry_when_values_are_gitlabs() -> None:
    assert "always" in RETRY_WHEN and len(RETRY_WHEN) == 13
    # every retryable reason the runner can report is a FailureReason string
    reported = {r.value for r in FailureReason}
    assert {"script_failure", "runner_system_failure", "job_execution_timeout"} <= RETRY_WHEN & reported


@pytest.mark.parametrize(
    ("allow_failure", "codes", "exit_code", "expected"),
    [
        (False, [], 1, False),
        (True, [], 1, True),
        (False, [137, 255], 137, True),
        (False, [137, 255], 1, False),
        (False, [137], None, False),  # a failure without an exit code (runner_system_failure)
        (True, [137], 1, False),  # exit_codes replace the plain flag
    ],
)
def test_allowed_to_fail(allow_failure: bool, codes: list[int], exit_code: int | None, expected: bool) -> None:
    assert allowed_to_fail(allow_failure, codes, exit_code) is expected
