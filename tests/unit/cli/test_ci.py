"""``conveyor lint`` and ``conveyor expand``: the example repositories expand to their
hand-checked ``expected.json``; errors print as ``file:line: message`` with exit code 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conveyor.cli import ci
from conveyor.cli.main import app

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
REPOSITORIES = sorted(path.parent.name for path in EXAMPLES.glob("*/expected.json"))


def test_there_are_at_least_three_example_repositories() -> None:
    assert {"demo", "include-extends", "rules-matrix"} <= set(REPOSITORIES)


@pytest.mark.parametrize("name", REPOSITORIES)
def test_expand_matches_the_expected_file(name: str) -> None:
    repository = EXAMPLES / name
    expected = json.loads((repository / "expected.json").read_text())
    assert json.loads(ci.expanded_json(repository / ".gitlab-ci.yml", ci.Options())) == expected


@pytest.mark.parametrize("name", REPOSITORIES)
def test_expand_command_prints_the_same_json(name: str) -> None:
    repository = EXAMPLES / name
    result = CliRunner().invoke(app, ["expand", str(repository / ".gitlab-ci.yml")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads((repository / "expected.json").read_text())


def test_lint_ok(tmp_path: Path) -> None:
    (tmp_path / ".gitlab-ci.yml").write_text("include: ci/a.yml\nb:\n  script: x\n")
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "a.yml").write_text("a:\n  script: y\n")
    result = CliRunner().invoke(app, ["lint", str(tmp_path / ".gitlab-ci.yml")])
    assert (result.exit_code, result.stdout) == (0, f"{tmp_path / '.gitlab-ci.yml'}: OK (2 jobs)\n")


def test_lint_errors_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / ".gitlab-ci.yml").write_text("include: ci/a.yml\nb:\n  script: x\n  stage: nope\n")
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "a.yml").write_text("a:\n  script: y\n  colour: blue\n")
    result = CliRunner().invoke(app, ["lint", str(tmp_path / ".gitlab-ci.yml")])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "ci/a.yml:3: jobs:a config contains unknown keys: colour",
        ".gitlab-ci.yml:4: b job: chosen stage nope does not exist; available stages are "
        ".pre, build, test, deploy, .post",
    ]


def test_options_select_the_context(tmp_path: Path) -> None:
    (tmp_path / ".gitlab-ci.yml").write_text(
        "tagged:\n  script: x\n  rules: [{if: $CI_COMMIT_TAG}]\n"
        "vars:\n  script: x\n  rules: [{if: $GO == 'yes'}]\n"
        "changed:\n  script: x\n  rules: [{changes: [src/*]}]\n"
    )
    def names(*args: str) -> list[str]:
        result = CliRunner().invoke(app, ["expand", str(tmp_path / ".gitlab-ci.yml"), *args])
        assert result.exit_code == 0, result.output
        return [job["name"] for job in json.loads(result.stdout)]

    assert names() == ["changed"]
    assert names("--tag", "--ref", "v1", "--changed", "README.md") == ["tagged", "changed"]
    assert names("-v", "GO=yes", "--changed", "docs/a.md") == ["vars"]


def test_lint_refuses_a_bad_variable_option(tmp_path: Path) -> None:
    (tmp_path / ".gitlab-ci.yml").write_text("a:\n  script: x\n")
    result = CliRunner().invoke(app, ["lint", str(tmp_path / ".gitlab-ci.yml"), "-v", "NOEQUALS"])
    assert result.exit_code == 2


def test_filesystem_resolver_stays_inside_the_root(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "secret.yml").write_text("x: 1\n")
    resolver = ci.FilesystemResolver(tmp_path / "repo")
    assert resolver.local("../secret.yml") is None
    assert resolver.local_files() == []


def test_lint_accepts_a_file_whose_jobs_do_not_run_on_main(tmp_path: Path) -> None:
    """GitLab's lint says a file is valid; only a simulation (--simulate) creates the pipeline."""
    (tmp_path / ".gitlab-ci.yml").write_text("a:\n  script: x\n  only: [tags]\n")
    result = CliRunner().invoke(app, ["lint", str(tmp_path / ".gitlab-ci.yml")])
    assert (result.exit_code, result.stdout) == (0, f"{tmp_path / '.gitlab-ci.yml'}: OK (1 jobs)\n")
    result = CliRunner().invoke(app, ["lint", "--simulate", str(tmp_path / ".gitlab-ci.yml")])
    assert result.exit_code == 1
    assert result.stdout == (
        ".gitlab-ci.yml: Pipeline will not run for the selected trigger. The rules configuration "
        "prevented any jobs from being added to the pipeline.\n"
    )
    result = CliRunner().invoke(app, ["lint", "--simulate", "--tag", "--ref", "v1", str(tmp_path / ".gitlab-ci.yml")])
    assert result.exit_code == 0, result.output


def test_lint_still_checks_needs(tmp_path: Path) -> None:
    (tmp_path / ".gitlab-ci.yml").write_text("a:\n  script: x\n  needs: [nope]\n")
    result = CliRunner().invoke(app, ["lint", str(tmp_path / ".gitlab-ci.yml")])
    assert (result.exit_code, result.stdout) == (1, ".gitlab-ci.yml:3: a job: undefined need: nope\n")


def test_lint_reads_templates_from_the_configured_directory(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    ci_file = tmp_path / "repo" / ".gitlab-ci.yml"
    ci_file.write_text("include: {template: Jobs/Lint.gitlab-ci.yml}\nb:\n  script: x\n")
    (tmp_path / "templates" / "Jobs").mkdir(parents=True)
    (tmp_path / "templates" / "Jobs" / "Lint.gitlab-ci.yml").write_text("lint:\n  script: y\n")
    result = CliRunner().invoke(app, ["lint", str(ci_file)])
    assert result.exit_code == 1
    assert "no template source is configured" in result.stdout
    result = CliRunner().invoke(app, ["lint", str(ci_file), "--templates", str(tmp_path / "templates")])
    assert (result.exit_code, result.stdout) == (0, f"{ci_file}: OK (2 jobs)\n")
    result = CliRunner().invoke(app, ["lint", str(ci_file)], env={"CONVEYOR_CI_TEMPLATES_DIR": str(tmp_path / "templates")})
    assert result.exit_code == 0, result.output


def test_lint_reads_this_repositorys_own_components_from_the_working_tree(tmp_path: Path) -> None:
    """`$CI_SERVER_FQDN/$CI_PROJECT_PATH/name@$CI_COMMIT_SHA`: the repository's own component."""
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "deploy.yml").write_text(
        "spec:\n  inputs:\n    env: {}\n---\ndeploy-$[[ inputs.env ]]:\n  script: x\n"
    )
    (tmp_path / ".gitlab-ci.yml").write_text(
        "include:\n  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/deploy@$CI_COMMIT_SHA\n    inputs: {env: prod}\n"
    )
    result = CliRunner().invoke(app, ["expand", str(tmp_path / ".gitlab-ci.yml")])
    assert result.exit_code == 0, result.output
    assert [job["name"] for job in json.loads(result.stdout)] == ["deploy-prod"]
