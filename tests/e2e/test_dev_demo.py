"""The README's quick start: `./dev demo` runs the example pipeline and exits 0."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_dev_demo_runs_the_example_pipeline(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env.update(CONVEYOR_DATA_DIR=str(tmp_path / "data"), COLUMNS="160")
    result = subprocess.run([str(ROOT / "dev"), "demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for expected in ("12 tests passed", "deploying main", "Pipeline #1", "allowed to fail"):
        assert expected in result.stdout
