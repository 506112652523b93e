"""The public surface of conveyor.ciconfig, and its purity (what its modules may import)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conveyor import ciconfig
from tests.plugins.imports import imported_modules

pytestmark = pytest.mark.unit

ALLOWED_ROOTS = {"yaml", "pydantic", "conveyor", "jsonschema"}
ALLOWED_CONVEYOR = ("conveyor.protocol", "conveyor.ciconfig")
FORBIDDEN_STDLIB = {"socket", "os", "subprocess", "pathlib", "io", "urllib", "http", "shutil"}


def test_public_names() -> None:
    assert sorted(ciconfig.__all__) == sorted(
        [
            "DEFAULT_JOB_STAGE",
            "DEFAULT_STAGES",
            "EDGE_STAGES",
            "POST_STAGE",
            "PRE_STAGE",
            "ConfigError",
            "ConfigIssue",
            "DefaultConfig",
            "IncludeFailed",
            "IncludeResolver",
            "IssueCollector",
            "JobConfig",
            "MemoryResolver",
            "Need",
            "PipelineConfig",
            "PipelineContext",
            "Workflow",
            "load",
        ]
    )
    for name in ciconfig.__all__:
        assert getattr(ciconfig, name) is not None


@pytest.mark.parametrize(("file", "module"), imported_modules(Path(ciconfig.__file__).parent))
def test_imports_only_stdlib_yaml_pydantic_and_protocol(file: str, module: str) -> None:
    root = module.split(".")[0]
    assert root not in FORBIDDEN_STDLIB, f"{file} imports {module}: ciconfig does no I/O"
    if root in ALLOWED_ROOTS:
        if root == "conveyor":
            assert module.startswith(ALLOWED_CONVEYOR), f"{file} imports {module}"
        return
    assert root in sys.stdlib_module_names or root == "__future__", f"{file} imports {module}"
