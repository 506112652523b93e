"""The Conveyor job runner: polls a GitLab-compatible coordinator and runs jobs locally.

Owns everything on the runner side of the GitLab runner API: settings, the HTTP client (the
only code that talks to the coordinator), the job life cycle, script generation, executors and
the trace pipeline. It reaches the server only over HTTP, so it works against real GitLab too.
May import the standard library, httpx (and its httpcore), pydantic, structlog and
``conveyor.protocol``; never ``conveyor.server`` or any server-only dependency.
"""

from conveyor.runner.client import CoordinatorClient, RetryPolicy
from conveyor.runner.errors import ExecutorError, RunnerError, SettingsError
from conveyor.runner.executors import (
    Executor,
    ExecutorContext,
    ExecutorFactory,
    ExitResult,
    FakeExecutor,
    ShellExecutor,
    default_executors,
)
from conveyor.runner.job import JobRunner
from conveyor.runner.main import main, run
from conveyor.runner.outcome import JobOutcome
from conveyor.runner.results import (
    JobRequestResult,
    PatchKind,
    PatchResult,
    UpdateKind,
    UpdateResult,
    VerifyResult,
)
from conveyor.runner.settings import RunnerSettings

__all__ = [
    "CoordinatorClient",
    "Executor",
    "ExecutorContext",
    "ExecutorError",
    "ExecutorFactory",
    "ExitResult",
    "FakeExecutor",
    "JobOutcome",
    "JobRequestResult",
    "JobRunner",
    "PatchKind",
    "PatchResult",
    "RetryPolicy",
    "RunnerError",
    "RunnerSettings",
    "SettingsError",
    "ShellExecutor",
    "UpdateKind",
    "UpdateResult",
    "VerifyResult",
    "default_executors",
    "main",
    "run",
]
