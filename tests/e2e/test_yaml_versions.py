"""Conveyor's YAML semantics do not depend on the PyYAML installed.

The lock pins one PyYAML; this runs the YAML tests again with an older release and with the newest
on PyPI put in front of it (PyYAML 6.0.4 changed the merge-key order and brought libyaml's own
nesting limit: both are Conveyor's to decide, in ``ciconfig.yamlsource``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
YAML_TESTS = [
    "tests/unit/ciconfig/test_yamlsource.py",
    "tests/unit/ciconfig/test_cases_extends.py",
    "tests/unit/ciconfig/test_properties.py::test_hostile_input_is_refused_clearly_within_bounds",
]


def install_pyyaml(target: Path, version: str | None) -> None:
    spec = "pyyaml" if version is None else f"pyyaml=={version}"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--only-binary", ":all:", "--upgrade", "--target", str(target), spec],
        check=True, timeout=300,
    )


@pytest.mark.parametrize("version", ["6.0.1", None], ids=["older", "newest"])
def test_yaml_behaviour_is_the_same_with_another_pyyaml(version: str | None, tmp_path: Path) -> None:
    install_pyyaml(tmp_path / "site", version)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(ROOT)])}
    probe = "import json, yaml; from conveyor.ciconfig import yamlsource; print(json.dumps([yaml.__version__, yaml.__file__, yamlsource.LIBYAML]))"
    installed, where, libyaml = json.loads(subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout)
    assert where.startswith(str(tmp_path / "site")), where
    if version is not None:
        assert installed == version
    assert libyaml, f"PyYAML {installed} has no libyaml here: the C parser would go untested"

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=--strict-markers", *YAML_TESTS],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, f"PyYAML {installed}:\n{result.stdout[-4000:]}{result.stderr[-2000:]}"
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-1000:]
