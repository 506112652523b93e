from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conveyor.runner.executors.base import ExecutorContext
from conveyor.runner.executors.shell import ShellExecutor
from conveyor.runner.script import bash, git
from conveyor.runner.script.variables import JobVariable

pytestmark = pytest.mark.unit

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
}  # fmt: skip


def sh(*args: str, cwd: Path) -> str:
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def upstream(tmp_path: Path) -> tuple[Path, list[str]]:
    repo = tmp_path / "upstream"
    repo.mkdir()
    sh("git", "-c", "init.defaultBranch=main", "init", "-q", cwd=repo)
    shas = []
    for n in range(3):
        (repo / "README").write_text(f"version {n}\n")
        sh("git", "add", "README", cwd=repo)
        sh("git", "commit", "-q", "-m", f"commit {n}", cwd=repo)
        shas.append(sh("git", "rev-parse", "HEAD", cwd=repo))
    return repo, shas


async def get_sources(tmp_path: Path, job, variables: list[JobVariable] = ()) -> tuple[int, str, Path]:
    project = tmp_path / "builds" / "project-7"
    ctx = bash.ScriptContext(project, tmp_path / "builds" / "project-7.tmp", list(variables))
    context = ExecutorContext(job, tmp_path / "builds", project, ctx.tmp_dir, {"PATH": os.environ["PATH"]})
    shell = ShellExecutor(context)
    await shell.prepare()
    out = bytearray()
    try:
        result = await shell.run(git.get_sources_script(job, ctx), stage="get_sources", timeout=60, output=out.extend)
    finally:
        await shell.cleanup()
    return result.exit_code, out.decode(), project


@pytest.mark.parametrize("url_form", ["file", "path"])
async def test_fetch_checks_out_the_sha_and_cleans(tmp_path: Path, upstream, job_factory, url_form: str) -> None:
    repo, shas = upstream
    url = f"file://{repo}" if url_form == "file" else str(repo)
    job = job_factory(repo_url=url, sha=shas[1])
    code, out, project = await get_sources(tmp_path, job)
    assert code == 0, out
    assert (project / "README").read_text() == "version 1\n"
    assert "Created fresh repository." in out
    assert f"Checking out {shas[1][:8]} as detached HEAD (ref is main)..." in out
    # A second run reuses the repository and removes untracked files.
    (project / "junk.txt").write_text("x")
    job = job_factory(repo_url=url, sha=shas[2])
    code, out, project = await get_sources(tmp_path, job)
    assert code == 0, out
    assert "Reinitialized existing Git repository" in out
    assert (project / "README").read_text() == "version 2\n"
    assert not (project / "junk.txt").exists()
    assert sh("git", "rev-parse", "HEAD", cwd=project) == shas[2]


async def test_shallow_fetch_with_git_depth(tmp_path: Path, upstream, job_factory) -> None:
    repo, shas = upstream
    job = job_factory(repo_url=f"file://{repo}", sha=shas[2])
    code, out, project = await get_sources(tmp_path, job, [JobVariable("GIT_DEPTH", "1")])
    assert code == 0, out
    assert "Fetching changes with git depth set to 1..." in out
    assert sh("git", "rev-list", "--count", "HEAD", cwd=project) == "1"


async def test_sha_outside_the_refspecs_is_fetched_directly(tmp_path: Path, upstream, job_factory) -> None:
    repo, shas = upstream
    sh("git", "checkout", "-q", "-b", "side", shas[0], cwd=repo)
    (repo / "side.txt").write_text("side\n")
    sh("git", "add", "side.txt", cwd=repo)
    sh("git", "commit", "-q", "-m", "side", cwd=repo)
    side = sh("git", "rev-parse", "HEAD", cwd=repo)
    job = job_factory(repo_url=f"file://{repo}", sha=side)  # refspecs fetch only main
    code, out, project = await get_sources(tmp_path, job)
    assert code == 0, out
    assert (project / "side.txt").read_text() == "side\n"


@pytest.mark.parametrize("strategy", ["none", "empty"])
async def test_strategies_without_git(tmp_path: Path, job_factory, strategy: str) -> None:
    job = job_factory(repo_url="https://gitlab.example.com/no/such.git")
    project = tmp_path / "builds" / "project-7"
    project.mkdir(parents=True)
    (project / "old.txt").write_text("old")
    code, out, project = await get_sources(tmp_path, job, [JobVariable("GIT_STRATEGY", strategy)])
    assert code == 0, out
    assert "Skipping Git repository setup" in out
    assert project.is_dir()
    assert (project / "old.txt").exists() is (strategy == "none")


async def test_strategy_none_without_a_shell_prints_what_bash_prints(tmp_path: Path, job_factory) -> None:
    """The runner skips bash for ``GIT_STRATEGY: none``; the log must not tell the difference."""
    job = job_factory(repo_url="https://gitlab.example.com/no/such.git")
    variables = [JobVariable("GIT_STRATEGY", "none"), JobVariable("MASKED", "x", masked=True)]
    ctx = bash.ScriptContext(tmp_path / "p", tmp_path / "p.tmp", variables)
    code, out, _ = await get_sources(tmp_path, job, variables)
    assert code == 0
    assert git.without_shell(job, ctx) == out.encode()


@pytest.mark.parametrize(
    "variables, debug",
    [
        ([JobVariable("GIT_STRATEGY", "fetch")], False),
        ([JobVariable("GIT_STRATEGY", "clone")], False),
        ([JobVariable("GIT_STRATEGY", "empty")], False),
        ([JobVariable("GIT_STRATEGY", "none")], True),  # xtrace shows the commands
        ([JobVariable("GIT_STRATEGY", "none"), JobVariable("CONF", "x", file=True)], False),  # writes a file
    ],
)
def test_stages_needing_a_shell_get_one(tmp_path: Path, job_factory, variables: list[JobVariable], debug: bool) -> None:
    ctx = bash.ScriptContext(tmp_path / "p", tmp_path / "p.tmp", variables, debug_trace=debug)
    assert git.without_shell(job_factory(), ctx) is None


async def test_clone_strategy_starts_from_scratch(tmp_path: Path, upstream, job_factory) -> None:
    repo, shas = upstream
    job = job_factory(repo_url=str(repo), sha=shas[0])
    project = tmp_path / "builds" / "project-7"
    project.mkdir(parents=True)
    (project / "old.txt").write_text("old")
    code, out, project = await get_sources(tmp_path, job, [JobVariable("GIT_STRATEGY", "clone")])
    assert code == 0, out
    assert not (project / "old.txt").exists()
    assert (project / "README").read_text() == "version 0\n"


async def test_unreachable_repository_fails_with_git_exit_code(tmp_path: Path, job_factory) -> None:
    job = job_factory(repo_url=str(tmp_path / "missing"))
    code, out, _ = await get_sources(tmp_path, job)
    assert code != 0
    assert "Fetching changes" in out


def test_refspecs_default_from_ref(job_factory) -> None:
    job = job_factory()
    job.git_info.refspecs = []
    assert git.refspecs(job) == ["+refs/heads/main:refs/remotes/origin/main"]
    job.git_info.ref_type = "tag"
    job.git_info.ref = "v1.0"
    assert git.refspecs(job) == ["+refs/tags/v1.0:refs/tags/v1.0"]


def test_strategy_defaults_follow_allow_git_fetch(job_factory) -> None:
    ctx = bash.ScriptContext(Path("/p"), Path("/p.tmp"), [])
    assert git.strategy(job_factory(), ctx) == "fetch"
    assert git.strategy(job_factory(allow_git_fetch=False), ctx) == "clone"
    ctx = bash.ScriptContext(Path("/p"), Path("/p.tmp"), [JobVariable("GIT_STRATEGY", "None")])
    assert git.strategy(job_factory(), ctx) == "none"


def test_repo_url_is_never_echoed(job_factory) -> None:
    job = job_factory()
    script = git.get_sources_script(job, bash.ScriptContext(Path("/p"), Path("/p.tmp"), []))
    for line in script.splitlines():
        if line.startswith("printf"):
            assert "glcbt-" not in line
