"""The runner's public surface and import boundaries."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import conveyor.runner
from conveyor.runner import executors, script, trace

pytestmark = pytest.mark.unit

ALLOWED_THIRD_PARTY = {"httpx", "pydantic", "structlog", "rich", "typer"}
FORBIDDEN = {"sqlalchemy", "asyncpg", "alembic", "redis", "fastapi", "starlette", "uvicorn", "obstore"}


def test_exported_members() -> None:
    assert conveyor.runner.__all__ == [
        "CoordinatorClient", "Executor", "ExecutorContext", "ExecutorError", "ExecutorFactory", "ExitResult",
        "FakeExecutor", "JobOutcome", "JobRequestResult", "JobRunner", "PatchKind", "PatchResult",
        "RetryPolicy", "RunnerError", "RunnerSettings", "SettingsError", "ShellExecutor", "UpdateKind",
        "UpdateResult", "VerifyResult", "default_executors", "main", "run",
    ]  # fmt: skip
    for package in (conveyor.runner, executors, script, trace):
        assert package.__doc__ and package.__doc__.strip()
        for name in package.__all__:
            assert hasattr(package, name), (package.__name__, name)


def test_runner_imports_only_what_it_may() -> None:
    root = Path(conveyor.runner.__file__).parent
    crossings = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in FORBIDDEN or name.startswith("conveyor.server"):
                    crossings.append(f"{path.name}: {name}")
                elif top == "conveyor":
                    allowed = name == "conveyor" or name.startswith(("conveyor.protocol", "conveyor.runner"))
                    if not allowed:
                        crossings.append(f"{path.name}: {name}")
    assert crossings == []


def test_executors_do_not_register_themselves() -> None:
    assert dict(executors.default_executors()) == {"shell": executors.ShellExecutor, "docker": executors.DockerExecutor}
