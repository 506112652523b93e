"""The wire contract shared by server and runner: GitLab runner API models, job specs, enums.

Imports nothing from the rest of Conveyor; only the standard library and pydantic.
"""

from conveyor.protocol import headers, keepalive, trace
from conveyor.protocol.enums import FailureReason, JobStatus, When
from conveyor.protocol.errors import ConveyorError
from conveyor.protocol.jobspec import JobSpec
from conveyor.protocol.models import (
    FeaturesInfo,
    GitInfo,
    JobFeatures,
    JobInfo,
    JobOutput,
    JobPayload,
    JobRequest,
    RegistrationDetails,
    RunnerInfo,
    RunnerInfoPayload,
    Step,
    UpdateJobRequest,
    Variable,
    VerifyRunnerRequest,
)

__all__ = [
    "ConveyorError",
    "FailureReason",
    "FeaturesInfo",
    "GitInfo",
    "JobFeatures",
    "JobInfo",
    "JobOutput",
    "JobPayload",
    "JobRequest",
    "JobSpec",
    "JobStatus",
    "RegistrationDetails",
    "RunnerInfo",
    "RunnerInfoPayload",
    "Step",
    "UpdateJobRequest",
    "Variable",
    "VerifyRunnerRequest",
    "When",
    "headers",
    "keepalive",
    "trace",
]
