"""GitSources remembers what a commit id fixes (real git, real repositories): a pipeline for a
commit seen before spawns git only to resolve its ref."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conveyor.server.sources import GitSources
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
