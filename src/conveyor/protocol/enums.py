"""Wire enums with GitLab's exact strings (gitlab-runner common/network.go, GitLab commit_status.rb)."""

from enum import StrEnum


class JobStatus(StrEnum):
    CREATED = "created"
    WAITING_FOR_RESOURCE = "waiting_for_resource"  # its resource_group is busy
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELING = "canceling"
    CANCELED = "canceled"
    SKIPPED = "skipped"
    MANUAL = "manual"
    SCHEDULED = "scheduled"  # when: delayed, waiting for scheduled_at

    @property
    def is_complete(self) -> bool:
        return self in COMPLETE_STATUSES

    @property
    def is_active(self) -> bool:
        """Handed to a runner and not finished: the job token works."""
        return self in (JobStatus.RUNNING, JobStatus.CANCELING)


COMPLETE_STATUSES = frozenset(
    {JobStatus.SUCCESS, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.SKIPPED}
)


class When(StrEnum):
    ON_SUCCESS = "on_success"
    ON_FAILURE = "on_failure"
    ALWAYS = "always"
    MANUAL = "manual"
    DELAYED = "delayed"
    NEVER = "never"


class FailureReason(StrEnum):
    UNKNOWN_FAILURE = "unknown_failure"
    SCRIPT_FAILURE = "script_failure"
    API_FAILURE = "api_failure"
    STUCK_OR_TIMEOUT_FAILURE = "stuck_or_timeout_failure"
    RUNNER_SYSTEM_FAILURE = "runner_system_failure"
    MISSING_DEPENDENCY_FAILURE = "missing_dependency_failure"
    RUNNER_UNSUPPORTED = "runner_unsupported"
    JOB_EXECUTION_TIMEOUT = "job_execution_timeout"
    ARCHIVED_FAILURE = "archived_failure"
    DATA_INTEGRITY_FAILURE = "data_integrity_failure"
    TRACE_SIZE_EXCEEDED = "trace_size_exceeded"
    NO_UPDATES_RUNNING = "no_updates_running"
    RUNNER_CONFIGURATION_ERROR = "runner_configuration_error"
    RUNNER_EXTERNAL_DEPENDENCY_FAILURE = "runner_external_dependency_failure"
    RUNNER_INTERRUPTED = "runner_interrupted"
    IMAGE_PULL_FAILURE = "image_pull_failure"
    JOB_CANCELED = "job_canceled"  # runner-internal; mapped to unknown_failure on the wire
