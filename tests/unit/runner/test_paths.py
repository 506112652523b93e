from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.runner.paths import project_dir, project_slug, tmp_dir

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("url", "slug"),
    [
        ("https://gitlab-ci-token:tok@gitlab.example.com/group/demo.git", "group/demo"),
        ("http://host:8080/a/b/c", "a/b/c"),
        ("https://host/group/demo.git/", "group/demo"),
        ("file:///srv/repos/demo.git", None),
        ("/srv/repos/demo", None),
        ("https://host/group/../etc", None),
        ("https://host/", None),
    ],
)
def test_project_slug(url: str, slug: str | None) -> None:
    assert project_slug(url) == slug


def test_project_and_tmp_dirs(job_factory) -> None:
    builds = Path("/builds")
    assert project_dir(builds, job_factory()) == Path("/builds/group/demo")
    assert project_dir(builds, job_factory(repo_url="file:///x/y")) == Path("/builds/project-7")
    assert tmp_dir(Path("/builds/group/demo")) == Path("/builds/group/demo.tmp")
