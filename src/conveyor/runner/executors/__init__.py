"""Executors: run the bash text of each job stage somewhere and report how it ended.

Owns process spawning, timeouts and killing. ``base.py`` is the interface, one module per
technology implements it, ``fake.py`` is for tests. Executors are picked from an explicit
``Mapping[str, ExecutorFactory]`` passed at startup (see ``default_executors``); nothing registers
itself on import. Imports the standard library, structlog and ``conveyor.protocol``.
"""

from collections.abc import Mapping

from conveyor.runner.executors.base import Executor, ExecutorContext, ExecutorFactory, ExitResult, Output
from conveyor.runner.executors.docker import DockerExecutor
from conveyor.runner.executors.fake import FakeExecutor
from conveyor.runner.executors.shell import ShellExecutor


def default_executors() -> Mapping[str, ExecutorFactory]:
    """The executors a production runner offers, by the name used in settings."""
    return {ShellExecutor.name: ShellExecutor, DockerExecutor.name: DockerExecutor}


__all__ = [
    "DockerExecutor",
    "Executor",
    "ExecutorContext",
    "ExecutorFactory",
    "ExitResult",
    "FakeExecutor",
    "Output",
    "ShellExecutor",
    "default_executors",
]
