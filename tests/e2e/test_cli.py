"""``conveyor project add`` and ``conveyor pipeline create`` against a running server process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.plugins.live import ROOT_TOKEN
from tests.plugins.repos import make_repo

pytestmark = pytest.mark.e2e


def conveyor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conveyor", *args], capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )


def test_project_add_and_pipeline_create(server_process, admin, start_runner, tmp_path: Path) -> None:  # noqa: ANN001
    sha = make_repo(tmp_path / "shop", "hello:\n  script: [echo hi from the cli]\n", branch="trunk")
    added = conveyor("project", "add", str(tmp_path / "shop"), "--url", server_process.url, "--token", ROOT_TOKEN)
    assert added.returncode == 0, added.stderr
    project = json.loads(added.stdout)
    assert project["name"] == "shop" and project["default_branch"] == "trunk"

    again = conveyor("project", "add", str(tmp_path / "shop"), "--url", server_process.url, "--token", ROOT_TOKEN)
    assert again.returncode == 1 and "already been taken" in again.stderr

    created = conveyor("pipeline", "create", "shop", "--url", server_process.url, "--token", ROOT_TOKEN)
    assert created.returncode == 0, created.stderr
    pipeline = json.loads(created.stdout)
    assert pipeline["sha"] == sha and pipeline["ref"] == "trunk" and pipeline["status"] == "pending"

    start_runner(server_process.url, admin.runner_token())
    assert admin.wait(project["id"], pipeline["id"])["status"] == "success"
    job = admin.jobs(project["id"], pipeline["id"])["hello"]
    assert b"hi from the cli" in admin.trace(project["id"], job["id"])


def test_wrong_token_and_bad_ref_are_clear_errors(server_process, tmp_path: Path) -> None:  # noqa: ANN001
    make_repo(tmp_path / "repo", "job:\n  script: [true]\n")
    denied = conveyor("project", "add", str(tmp_path / "repo"), "--url", server_process.url, "--token", "glpat-wrong")
    assert denied.returncode == 1 and "401" in denied.stderr
    conveyor("project", "add", str(tmp_path / "repo"), "--url", server_process.url, "--token", ROOT_TOKEN)
    missing = conveyor("pipeline", "create", "repo", "--ref", "nope", "--url", server_process.url, "--token", ROOT_TOKEN)
    assert missing.returncode == 1 and "nope" in missing.stderr
    not_a_repo = conveyor("project", "add", str(tmp_path), "--url", server_process.url, "--token", ROOT_TOKEN)
    assert not_a_repo.returncode == 1 and "not a git repository" in not_a_repo.stderr
