"""The Executor interface: where and how a job's stage scripts run.

Lifecycle (gitlab-runner ``common/executor.go``): ``prepare()`` once, then ``run()`` once per
stage in order (``get_sources``, ``step_script``, ``after_script``, ``cleanup_file_variables``),
then ``cleanup()`` exactly once, also when ``prepare()`` failed or the job was aborted.
One executor serves one job; calls never overlap.

Executors are chosen by name from an explicit ``Mapping[str, ExecutorFactory]`` given to
``conveyor.runner.main.run``; nothing registers itself at import time.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.protocol.keepalive import KeepaliveConfig
from conveyor.protocol.models import JobPayload
from conveyor.runner.settings import DockerSettings

Output = Callable[[bytes], None]
"""Receives the merged stdout/stderr bytes of a stage as they arrive; must not block."""


@dataclass(frozen=True)
class ExitResult:
    """How a stage ended. A non-zero ``exit_code`` is a script failure, not an executor error."""

    exit_code: int
    timed_out: bool = False
    canceled: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.canceled


@dataclass(frozen=True)
class ExecutorContext:
    """What an executor knows about its job."""

    job: JobPayload
    builds_dir: Path
    project_dir: Path
    tmp_dir: Path
    env: Mapping[str, str] = field(default_factory=dict)  # base environment for the job
    log: Output | None = None  # runner messages for the job log (image pulls, services)
    docker: DockerSettings | None = None
    keepalive: KeepaliveConfig = field(default_factory=KeepaliveConfig)


class Executor(ABC):
    """Runs the stage scripts of one job."""

    name: str = ""
    host_stages: frozenset[str] = frozenset()
    """Stages run on the runner's host with host paths (e.g. ``get_sources`` for docker)."""

    def __init__(self, context: ExecutorContext) -> None:
        self.context = context

    def runs_on_host(self, stage: str) -> bool:
        """Does ``stage`` run with the host's bash and host paths? The job runner then does a stage
        that only creates or removes directories itself instead of starting a shell for it."""
        return stage in self.host_stages

    def job_path(self, host_path: Path) -> Path:
        """Where ``host_path`` (the project or temporary directory) appears to the job's scripts."""
        return host_path

    @abstractmethod
    async def prepare(self) -> None:
        """Make the environment ready (e.g. check that bash exists).

        Raises:
            ExecutorError: the environment cannot run jobs; the job fails with its reason.
        """

    @abstractmethod
    async def run(
        self,
        script: str,
        *,
        stage: str,
        timeout: float,
        output: Output,
        cancel: asyncio.Event | None = None,
    ) -> ExitResult:
        """Run one stage script to completion and return how it ended.

        Everything the stage prints goes to ``output``. When ``timeout`` seconds pass or
        ``cancel`` is set, every process the stage started is stopped (terminate, then kill
        after a grace period) and the result says ``timed_out`` / ``canceled``. If the calling
        task is cancelled, the processes are killed the same way and ``CancelledError``
        propagates.

        Raises:
            ExecutorError: the stage could not be started (not for a failing script).
        """

    @abstractmethod
    async def cleanup(self) -> None:
        """Release what ``prepare`` and ``run`` created. Idempotent; safe after a failed prepare."""


ExecutorFactory = Callable[[ExecutorContext], Executor]
