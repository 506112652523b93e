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
    RegisterRunnerRequest,
    RegistrationDetails,
    ResetTokenResponse,
    RunnerInfo,
    RunnerInfoPayload,
    RunnerTokenRequest,
    Step,
    UnregisterManagerRequest,
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
    "RegisterRunnerRequest",
    "RegistrationDetails",
    "ResetTokenResponse",
    "RunnerInfo",
    "RunnerInfoPayload",
    "RunnerTokenRequest",
    "Step",
    "UnregisterManagerRequest",
    "UpdateJobRequest",
    "Variable",
    "VerifyRunnerRequest",
    "When",
    "headers",
    "keepalive",
    "trace",
]
