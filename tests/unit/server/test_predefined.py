"""The job payload's predefined variables (spec section 13) with GitLab's values, and the JSON
type of every field of the payload (what clients written against GitLab read)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from conveyor.protocol import JobSpec
from conveyor.server.queue import payload

pytestmark = pytest.mark.unit

SHA, BEFORE = "a" * 40, "b" * 40
PROJECT = {"id": 12, "name": "group/sub/demo", "source": "/srv/demo", "default_branch": "main", "protected_refs": []}
PIPELINE = {
    "id": 345, "iid": 4, "ref": "feature/Login-Form", "sha": SHA, "before_sha": BEFORE, "tag": False,
    "source": "push", "variables": {}, "created_at": datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC),
    "commit": {"message": "Fix login\n\nThe form lost its token.\n", "author_name": "Ada Lovelace",
               "author_email": "ada@example.com", "timestamp": "2026-01-02T04:00:00+01:00"},
    "user": {"id": 1, "login": "root", "name": "Administrator", "email": ""},
}  # fmt: skip
RUNNER = {"id": 9, "description": "shell on ci-1", "tag_list": ("docker", "linux")}


def build(spec: JobSpec, pipeline: dict[str, Any] | None = None, runner: dict[str, Any] | None = RUNNER) -> dict[str, Any]:
    job = {"id": 6789, "name": spec.name, "stage": spec.stage, "spec": spec.model_dump(mode="json"),
           "protected": False, "started_at": datetime(2026, 1, 2, 3, 5, 0, tzinfo=UTC)}  # fmt: skip
    built = payload.build(job, PROJECT, pipeline or PIPELINE, token="glcbt-secret", repo_url="https://ci.example.com:8443/group/sub/demo.git",
                          server_url="https://ci.example.com:8443", default_timeout=3600, runner=runner)  # fmt: skip
    return built.model_dump(mode="json")


SPEC = JobSpec(
    name="rspec: [ruby, 3]", stage="test", stage_idx=2, script=["x"], timeout=600, image={"name": "ruby:3.3"},
    predefined_variables={"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "4"},
)  # fmt: skip
URL = "https://ci.example.com:8443"
EXPECTED = {
    "CI": "true",
    "GITLAB_CI": "true",
    "CI_SERVER": "yes",
    "CI_SERVER_URL": URL,
    "CI_SERVER_HOST": "ci.example.com",
    "CI_SERVER_PORT": "8443",
    "CI_SERVER_PROTOCOL": "https",
    "CI_SERVER_FQDN": "ci.example.com:8443",
    "CI_SERVER_NAME": "GitLab",
    "CI_SERVER_VERSION": "17.11.0",
    "CI_SERVER_VERSION_MAJOR": "17",
    "CI_SERVER_VERSION_MINOR": "11",
    "CI_SERVER_VERSION_PATCH": "0",
    "CI_SERVER_REVISION": "",
    "CI_API_V4_URL": f"{URL}/api/v4",
    "CI_API_GRAPHQL_URL": f"{URL}/api/graphql",
    "CI_TEMPLATE_REGISTRY_HOST": "registry.gitlab.com",
    "CI_PROJECT_ID": "12",
    "CI_PROJECT_NAME": "demo",
    "CI_PROJECT_TITLE": "demo",
    "CI_PROJECT_PATH": "group/sub/demo",
    "CI_PROJECT_PATH_SLUG": "group-sub-demo",
    "CI_PROJECT_NAMESPACE": "group/sub",
    "CI_PROJECT_ROOT_NAMESPACE": "group",
    "CI_PROJECT_URL": f"{URL}/group/sub/demo",
    "CI_PROJECT_VISIBILITY": "private",
    "CI_CONFIG_PATH": ".gitlab-ci.yml",
    "CI_DEFAULT_BRANCH": "main",
    "CI_PIPELINE_ID": "345",
    "CI_PIPELINE_IID": "4",
    "CI_PIPELINE_SOURCE": "push",
    "CI_PIPELINE_URL": f"{URL}/group/sub/demo/-/pipelines/345",
    "CI_PIPELINE_CREATED_AT": "2026-01-02T03:04:05Z",
    "CI_COMMIT_SHA": SHA,
    "CI_COMMIT_SHORT_SHA": "aaaaaaaa",
    "CI_COMMIT_BEFORE_SHA": BEFORE,
    "CI_COMMIT_REF_NAME": "feature/Login-Form",
    "CI_COMMIT_REF_SLUG": "feature-login-form",
    "CI_COMMIT_BRANCH": "feature/Login-Form",
    "CI_COMMIT_REF_PROTECTED": "false",
    "CI_COMMIT_MESSAGE": "Fix login\n\nThe form lost its token.\n",
    "CI_COMMIT_TITLE": "Fix login",
    "CI_COMMIT_DESCRIPTION": "\nThe form lost its token.",
    "CI_COMMIT_AUTHOR": "Ada Lovelace <ada@example.com>",
    "CI_COMMIT_TIMESTAMP": "2026-01-02T04:00:00+01:00",
    "CI_JOB_ID": "6789",
    "CI_JOB_NAME": "rspec: [ruby, 3]",
    "CI_JOB_NAME_SLUG": "rspec---ruby--3",  # GitLab's slugify does not collapse dashes
    "CI_JOB_STAGE": "test",
    "CI_JOB_URL": f"{URL}/group/sub/demo/-/jobs/6789",
    "CI_JOB_STARTED_AT": "2026-01-02T03:05:00Z",
    "CI_JOB_TIMEOUT": "600",
    "CI_JOB_IMAGE": "ruby:3.3",
    "CI_JOB_TOKEN": "glcbt-secret",
    "CI_NODE_INDEX": "2",
    "CI_NODE_TOTAL": "4",
    "CI_REPOSITORY_URL": "https://ci.example.com:8443/group/sub/demo.git",
    "CI_RUNNER_ID": "9",
    "CI_RUNNER_DESCRIPTION": "shell on ci-1",
    "CI_RUNNER_TAGS": '["docker", "linux"]',
    "GITLAB_USER_ID": "1",
    "GITLAB_USER_LOGIN": "root",
    "GITLAB_USER_NAME": "Administrator",
    "GITLAB_USER_EMAIL": "",
    "CONVEYOR": "true",
}
SECRET = {"CI_JOB_TOKEN", "CI_REPOSITORY_URL"}


def test_every_predefined_variable_with_gitlabs_value() -> None:
    variables = build(SPEC)["variables"]
    found = {v["key"]: v["value"] for v in variables}
    assert found == EXPECTED
    assert len(variables) == len(found), "no variable twice"
    for variable in variables:
        public = variable["key"] not in SECRET
        expected = {"key": variable["key"], "value": variable["value"], "public": public,
                    "masked": variable["key"] == "CI_JOB_TOKEN"}  # fmt: skip
        assert variable == expected  # no "file": null / "raw": null


def test_tag_pipeline_variables() -> None:
    tagged = {**PIPELINE, "ref": "v1.2.0", "tag": True, "commit": {**PIPELINE["commit"], "tag_message": "Release 1.2"}}
    body = build(SPEC, tagged)
    found = {v["key"]: v["value"] for v in body["variables"]}
    assert (found["CI_COMMIT_TAG"], found["CI_COMMIT_TAG_MESSAGE"]) == ("v1.2.0", "Release 1.2")
    assert "CI_COMMIT_BRANCH" not in found
    assert body["git_info"]["ref_type"] == "tag"
    assert body["git_info"]["refspecs"] == ["+refs/tags/v1.2.0:refs/tags/v1.2.0"]


def test_availability_rules() -> None:
    """Manual jobs say so; no image, no runner (tests): the variables are absent; a pipeline
    that names no user was made by root."""
    manual = JobSpec(name="deploy", stage="deploy", stage_idx=3, script=["x"], when="manual")
    found = {v["key"]: v["value"] for v in build(manual, {**PIPELINE, "user": None}, runner=None)["variables"]}
    assert found["CI_JOB_MANUAL"] == "true"
    assert found["CI_NODE_TOTAL"] == "1" and "CI_NODE_INDEX" not in found
    assert found["CI_JOB_TIMEOUT"] == "3600"
    assert (found["GITLAB_USER_ID"], found["GITLAB_USER_LOGIN"], found["GITLAB_USER_NAME"]) == ("1", "root", "Administrator")
    for absent in ("CI_JOB_IMAGE", "CI_RUNNER_ID", "CI_PIPELINE_TRIGGERED", "CI_COMMIT_TAG"):
        assert absent not in found
    child = {v["key"]: v["value"] for v in build(SPEC, {**PIPELINE, "source": "parent_pipeline"})["variables"]}
    assert child["CI_PIPELINE_SOURCE"] == "parent_pipeline"
    triggered = {v["key"]: v["value"] for v in build(SPEC, {**PIPELINE, "source": "pipeline"})["variables"]}
    assert triggered["CI_PIPELINE_TRIGGERED"] == "true"


def test_gitlab_user_comes_from_the_pipelines_user() -> None:
    """The pipeline's ``user`` column (GitLab's ``username``, or ``login``) makes GITLAB_USER_*."""
    ada = {"id": 42, "username": "ada", "name": "Ada Lovelace", "email": "ada@example.com"}
    found = {v["key"]: v["value"] for v in build(SPEC, {**PIPELINE, "user": ada})["variables"]}
    assert [found[f"GITLAB_USER_{k}"] for k in ("ID", "LOGIN", "NAME", "EMAIL")] == ["42", "ada", "Ada Lovelace", "ada@example.com"]
    legacy = {v["key"]: v["value"] for v in build(SPEC, {**PIPELINE, "user": {"id": 7, "login": "bob", "name": "Bob"}})["variables"]}
    assert (legacy["GITLAB_USER_LOGIN"], legacy["GITLAB_USER_EMAIL"]) == ("bob", "")


def test_dotenv_of_dependencies_sits_between_yaml_and_pipeline_variables() -> None:
    """GitLab's precedence: dotenv beats the job's YAML variables, pipeline variables beat
    dotenv; of two dependencies the later wins; a dependency without an archive is no download."""
    spec = JobSpec(name="t", stage="test", stage_idx=1, script=["x"], variables={"A": "yaml", "B": "yaml"})
    job = {"id": 5, "name": "t", "stage": "test", "spec": spec.model_dump(mode="json"), "protected": False}
    dependencies = [
        {"id": 1, "name": "a", "filename": "a.zip", "size": 3, "dotenv_variables": {"A": "first", "C": "first"}},
        {"id": 2, "name": "b", "filename": None, "size": None, "dotenv_variables": {"C": "second", "P": "dotenv"}},
    ]
    pipeline = {**PIPELINE, "variables": {"P": "pipeline"}}
    built = payload.build(job, PROJECT, pipeline, dependencies=dependencies, token="t", repo_url="r",
                          server_url=URL, default_timeout=60).model_dump(mode="json")  # fmt: skip
    found = {v["key"]: v["value"] for v in built["variables"]}  # the runner keeps the last of a key
    assert (found["A"], found["B"], found["C"], found["P"]) == ("first", "yaml", "second", "pipeline")
    assert [d["name"] for d in built["dependencies"]] == ["a"]


# GitLab's JSON types of the payload (runner-api.md 3.5): a field of another type, or a null
# where GitLab sends a value, breaks clients written against GitLab.
STR, INT, BOOL = str, int, bool
TYPES: dict[str, Any] = {
    "id": INT, "token": STR, "allow_git_fetch": BOOL,
    "job_info": {"id": INT, "name": STR, "stage": STR, "project_id": INT, "project_name": STR,
                 "project_full_path": STR, "pipeline_id": INT, "time_in_queue_seconds": float,
                 "project_jobs_running_on_instance_runners_count": STR, "queue_size": INT, "queue_depth": INT},
    "git_info": {"repo_url": STR, "ref": STR, "sha": STR, "before_sha": STR, "ref_type": STR,
                 "refspecs": [STR], "depth": INT, "repo_object_format": STR, "protected": BOOL},
    "runner_info": {"timeout": INT, "runner_session_url": type(None)},
    "variables": [{"key": STR, "value": STR, "public": BOOL, "masked": BOOL}],
    "steps": [{"name": STR, "script": [STR], "timeout": INT, "when": STR, "allow_failure": BOOL}],
    "image": {"name": STR},
    "services": [], "artifacts": [], "cache": [], "credentials": [], "dependencies": [], "hooks": [],
    "features": {"trace_sections": BOOL, "failure_reasons": [STR]},
}  # fmt: skip


def _check(value: Any, expected: Any, path: str) -> None:
    if isinstance(expected, dict):
        assert isinstance(value, dict), path
        assert sorted(value) == sorted(expected), path
        for key, kind in expected.items():
            _check(value[key], kind, f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(value, list), path
        for index, item in enumerate(value):
            _check(item, expected[0], f"{path}[{index}]")
    elif expected is INT:
        assert isinstance(value, int) and not isinstance(value, bool), path
    else:
        assert type(value) is expected, f"{path}: {type(value).__name__}"


def test_every_field_has_gitlabs_json_type() -> None:
    _check(build(SPEC), TYPES, "payload")
