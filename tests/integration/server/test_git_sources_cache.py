"""GitSources remembers what a commit id fixes (real git, real repositories): a pipeline for a
commit seen before spawns git only to resolve its ref."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from conveyor.server.sources import GitSources
from conveyor.server.sources import refs
from conveyor.server.sources.git import GitError

from tests.plugins.repos import make_repo

pytestmark = pytest.mark.integration


async def test_answers_about_a_commit_id_are_remembered_and_refs_are_asked_afresh(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    sha = make_repo(repo, "job:\n  script: [true]\n", {"a.txt": "a"})
    sources = GitSources(tmp_path / "mirrors")
    source = str(repo)
    assert await sources.resolve(source, "main") == sha
    text = await sources.read_file(source, sha, ".gitlab-ci.yml")
    files = await sources.list_files(source, sha)
    commit = await sources.commit_info(source, sha)
    assert text == "job:\n  script: [true]\n" and sorted(files) == [".gitlab-ci.yml", "a.txt"]
    assert await sources.parent(source, sha) is None  # a root commit: not remembered (empty)
    commit["tag_message"] = "changed by a caller"  # a caller's copy: the remembered one stays
    files.append("not/in/the/tree")

    shutil.rmtree(repo)  # git can no longer answer anything about this source
    assert await sources.read_file(source, sha, ".gitlab-ci.yml") == text
    assert sorted(await sources.list_files(source, sha)) == [".gitlab-ci.yml", "a.txt"]
    assert "tag_message" not in await sources.commit_info(source, sha)
    with pytest.raises(GitError):  # a ref is asked afresh: the repository is gone
        await sources.resolve(source, "main")
    assert await sources.read_file(source, "main", ".gitlab-ci.yml") is None  # a ref name is never remembered


async def test_an_empty_answer_is_asked_again(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    sha = make_repo(repo, "job:\n  script: [true]\n")
    sources = GitSources(tmp_path / "mirrors")
    assert await sources.read_file(str(repo), sha, "later.txt") is None
    assert await sources.read_file(str(repo), "f" * 40, ".gitlab-ci.yml") is None  # not fetched yet, say
    assert await sources.read_file(str(repo), sha, ".gitlab-ci.yml") == "job:\n  script: [true]\n"


def _git(repo: Path, *args: str) -> str:
    import subprocess

    command = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@conveyor.invalid", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


async def test_a_ref_and_whether_it_is_a_tag_in_one_read_agree_with_rev_parse(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    first = make_repo(repo, "job:\n  script: [true]\n")
    _git(repo, "commit", "--allow-empty", "-qm", "second")
    second = _git(repo, "rev-parse", "HEAD")
    _git(repo, "tag", "light", first)
    _git(repo, "tag", "-a", "annotated", "-m", "a tag", first)
    _git(repo, "branch", "both", second)
    _git(repo, "tag", "both", first)  # a tag wins over a branch of the same name, as in rev-parse
    _git(repo, "branch", "v1/x", second)  # for-each-ref's prefix match must not make v1 a branch
    _git(repo, "tag", "-a", "tree-tag", "-m", "not a commit", f"{first}^{{tree}}")
    _git(repo, "branch", "heads/main", first)  # refs/heads/heads/main: "heads/main" is refs/heads/main
    _git(repo, "branch", "packed", first)
    sources = GitSources(tmp_path / "mirrors")
    source = str(repo)
    names = ("main", "light", "annotated", "both", "v1", "v1/x", "heads/main", "packed", first, "HEAD", "HEAD~1",
             "missing", "tree-tag", "../main", "main.lock")
    for packed in (False, True):
        if packed:  # packed-refs instead of loose files; one branch moved after packing
            _git(repo, "pack-refs", "--all")
            _git(repo, "branch", "-f", "packed", second)
        for ref in names:
            try:
                expected = (await sources.resolve(source, ref), await sources.is_tag(source, ref))
            except GitError:
                expected = None
            try:
                found = await sources.resolve_ref(source, ref)
            except GitError:
                found = None
            assert found == expected, (ref, packed)
    assert await sources.resolve_ref(source, "annotated") == (first, True)
    assert await sources.resolve_ref(source, "both") == (first, True)
    assert await sources.resolve_ref(source, "main") == (second, False)
    assert await sources.resolve_ref(source, "packed") == (second, False)
    assert refs.read_branch(source, "main") == second and refs.read_branch(source, "v1/x") == second
    assert refs.read_branch(source, "both") is None and refs.read_branch(source, "HEAD") is None


def _two_commits(repo: Path) -> tuple[str, str]:
    first = make_repo(repo, "job:\n  script: [true]\n")
    _git(repo, "commit", "--allow-empty", "-qm", "second\n\nbody")
    return first, _git(repo, "rev-parse", "HEAD")


async def test_parent_and_commit_come_from_one_read(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    first, second = _two_commits(repo)
    sources = GitSources(tmp_path / "mirrors")
    assert await sources.parent(str(repo), second) == first
    assert await sources.parent(str(repo), first) is None
    info = await sources.commit_info(str(repo), second)
    assert info["message"] == "second\n\nbody\n" and info["author_name"] == "t" and "parents" not in info
    assert info["timestamp"] == _git(repo, "show", "-s", "--format=%cI", second)
    assert await sources.parent(str(repo), "HEAD") == first  # a revision, not an id: asked afresh


async def test_the_config_and_its_commit_in_one_read(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    first, second = _two_commits(repo)
    sources = GitSources(tmp_path / "mirrors")
    source = str(repo)
    assert await sources.read_with_commit(source, second, ".gitlab-ci.yml") == "job:\n  script: [true]\n"
    assert await sources.read_with_commit(source, second, "missing.yml") is None
    shutil.rmtree(repo)  # what the one read brought is remembered
    assert await sources.parent(source, second) == first
    info = await sources.commit_info(source, second)
    assert info["message"] == "second\n\nbody\n" and info["author_email"] == "t@conveyor.invalid"
    assert await sources.read_file(source, second, ".gitlab-ci.yml") == "job:\n  script: [true]\n"


def _slow_git(tmp_path: Path, seconds: float) -> str:
    """A PATH whose ``git`` waits ``seconds`` before running the real one (a slow remote, say)."""
    bin_dir = tmp_path / "slow-bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "git"
    wrapper.write_text(f"#!/bin/sh\nsleep {seconds}\nexec {shutil.which('git')} \"$@\"\n")
    wrapper.chmod(0o755)
    return f"{bin_dir}:{os.environ['PATH']}"


async def test_git_runs_from_threads_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """git is spawned by subprocess from GitSources' own threads (uvloop's spawn forks the whole
    server: 3.3-4.3 ms of its CPU per git process at 150 MB, against 0.4 ms): eight slow git
    processes at once still leave asyncio.to_thread's pool (6 threads here) free for
    ``pipeline.build``, and every answer comes back right."""
    repo = tmp_path / "repo"
    sha = make_repo(repo, "job:\n  script: [true]\n")
    monkeypatch.setenv("PATH", _slow_git(tmp_path, 1.0))
    sources = GitSources(tmp_path / "mirrors")
    reads = [asyncio.create_task(sources.output(str(repo), "rev-parse", "HEAD")) for _ in range(8)]
    await asyncio.sleep(0.2)  # all eight are in their sleep
    assert not any(read.done() for read in reads)
    assert await asyncio.wait_for(asyncio.to_thread(lambda: "free"), 0.5) == "free"
    assert [answer.strip() for answer in await asyncio.gather(*reads)] == [sha.encode()] * 8


async def test_a_git_process_past_the_timeout_is_killed_with_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, "job:\n  script: [true]\n")
    monkeypatch.setenv("PATH", _slow_git(tmp_path, 30))
    sources = GitSources(tmp_path / "mirrors", timeout=1)
    started = asyncio.get_running_loop().time()
    with pytest.raises(GitError, match="git rev-parse timed out after 1 s"):
        await sources.output(str(repo), "rev-parse", "HEAD")
    assert asyncio.get_running_loop().time() - started < 10
