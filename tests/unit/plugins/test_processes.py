"""tests/plugins/processes.kill_working_in: it ends the shells working in one directory and no other.

Regression: test_runner_death killed every process whose command line looked like a step script,
so on two pytest-xdist workers it SIGKILLed the shell jobs of test_runner_executors (exit code 137,
or a timeout job reported as script_failure).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.plugins.processes import alive, kill_working_in

pytestmark = pytest.mark.unit


def test_only_the_processes_working_in_the_directory_die(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours" / "project", tmp_path / "theirs" / "project"
    ours.mkdir(parents=True)
    theirs.mkdir(parents=True)
    same = ["bash", "--noprofile", "--norc", "-c", "sleep 120"]  # the same command line in both
    mine = subprocess.Popen(same, cwd=ours, start_new_session=True)
    other = subprocess.Popen(same, cwd=theirs, start_new_session=True)
    try:
        killed = kill_working_in(tmp_path / "ours")
        assert mine.wait(10) == -9 and mine.pid in killed
        assert other.pid not in killed and alive(other.pid)
    finally:
        mine.kill()
        other.kill()
        mine.wait(10)
        other.wait(10)
