"""The public surface of conveyor.pipeline, and its purity (what its modules may import)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conveyor import pipeline
from tests.plugins.imports import imported_modules

pytestmark = pytest.mark.unit

ALLOWED_CONVEYOR = ("conveyor.protocol", "conveyor.ciconfig", "conveyor.pipeline")
FORBIDDEN_STDLIB = {"socket", "os", "subprocess", "pathlib", "io", "urllib", "http", "shutil"}


def test_public_names() -> None:
    assert sorted(pipeline.__all__) == sorted(
        [
            "NOTHING_TO_RUN",
            "RETRY_WHEN",
            "WORKFLOW_FILTERED",
            "InvalidJobStates",
            "JobState",
            "Progress",
            "allowed_to_fail",
            "build",
            "composite",
            "expanded_variables",
            "predefined_variables",
            "progress",
            "reset_after_play",
            "should_retry",
            "slugify",
            "validate",
        ]
    )
    for name in pipeline.__all__:
        assert getattr(pipeline, name) is not None


@pytest.mark.parametrize(("file", "module"), imported_modules(Path(pipeline.__file__).parent))
def test_imports_only_stdlib_protocol_and_ciconfig(file: str, module: str) -> None:
    root = module.split(".")[0]
    assert root not in FORBIDDEN_STDLIB, f"{file} imports {module}: pipeline does no I/O"
    if root == "conveyor":
        assert module.startswith(ALLOWED_CONVEYOR), f"{file} imports {module}"
    else:
        assert root in sys.stdlib_module_names or root in {"__future__", "yaml", "pydantic"}
