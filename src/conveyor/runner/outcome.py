"""How a job ended: the verdict of its stages, and what is reported to the coordinator.

Failure reasons are mapped before sending (gitlab-runner ``common/failure_reason_mapper.go``):
a reason the coordinator lists in ``features.failure_reasons`` or one of the always-supported
three is sent as is; a few have compatible fallbacks; anything else becomes ``unknown_failure``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from conveyor.protocol.enums import FailureReason
from conveyor.protocol.models import Step
from conveyor.runner.executors.base import ExitResult
from conveyor.runner.results import UpdateKind
from conveyor.runner.trace.sender import FinalOutcome

ALWAYS_SUPPORTED = frozenset(
    {FailureReason.SCRIPT_FAILURE, FailureReason.RUNNER_SYSTEM_FAILURE, FailureReason.JOB_EXECUTION_TIMEOUT}
)
COMPATIBLE = {
    FailureReason.IMAGE_PULL_FAILURE: FailureReason.RUNNER_SYSTEM_FAILURE,
    FailureReason.RUNNER_EXTERNAL_DEPENDENCY_FAILURE: FailureReason.RUNNER_SYSTEM_FAILURE,
    FailureReason.RUNNER_CONFIGURATION_ERROR: FailureReason.SCRIPT_FAILURE,
}


def map_failure_reason(reason: FailureReason | None, supported: Iterable[str]) -> str:
    """The wire ``failure_reason`` for ``reason`` given the coordinator's supported list."""
    accepted = set(supported) | ALWAYS_SUPPORTED
    if reason is None:
        return FailureReason.SCRIPT_FAILURE.value
    if reason in accepted:
        return reason.value
    fallback = COMPATIBLE.get(reason)
    if fallback is not None and fallback in accepted:
        return fallback.value
    return FailureReason.UNKNOWN_FAILURE.value


def format_duration(seconds: float) -> str:
    """Go's time.Duration style, as GitLab prints timeouts: ``1h0m0s``, ``5m0s``, ``30s``."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


@dataclass(frozen=True)
class Verdict:
    """The result of running a job's stages, before mapping to the wire."""

    failure_reason: FailureReason | None = None
    exit_code: int | None = None
    message: str = ""

    @property
    def succeeded(self) -> bool:
        return self.failure_reason is None

    @property
    def state(self) -> str:
        return "success" if self.succeeded else "failed"

    @property
    def job_status(self) -> str:
        """``CI_JOB_STATUS`` as after_script sees it."""
        if self.failure_reason is FailureReason.JOB_CANCELED:
            return "canceled"
        return self.state


SUCCESS = Verdict()


@dataclass(frozen=True)
class JobOutcome:
    """What happened to one job, for the polling loop, logs and tests."""

    job_id: int
    state: str
    failure_reason: str | None = None
    exit_code: int | None = None
    final: FinalOutcome | None = None  # None: dropped at acknowledgement, nothing was run
    acknowledgement: UpdateKind | None = None
    checksum: str | None = None
    bytesize: int | None = None
    trace_path: Path | None = None  # kept only with RunnerSettings.keep_traces


def judge(result: ExitResult, job_timeout: float) -> Verdict | None:
    """The verdict of a finished script stage; None when it succeeded."""
    if result.canceled:
        return Verdict(FailureReason.JOB_CANCELED, message=": canceled")
    if result.timed_out:
        detail = f"execution took longer than {format_duration(job_timeout)} seconds"
        return Verdict(FailureReason.JOB_EXECUTION_TIMEOUT, message=f": {detail}")
    if result.exit_code != 0:
        return Verdict(FailureReason.SCRIPT_FAILURE, result.exit_code, f": exit code {result.exit_code}")
    return None


def should_run(step: Step, succeeded: bool) -> bool:
    """Whether a step runs given its ``when`` and whether the job has succeeded so far."""
    when = step.when or "on_success"
    if when == "always":
        return True
    return succeeded if when == "on_success" else (when == "on_failure" and not succeeded)
