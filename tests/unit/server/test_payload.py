"""The job payload carries the JobSpec's image, services, artifacts and cache in GitLab's shape."""

from __future__ import annotations

import pytest

from conveyor.protocol import JobSpec
from conveyor.server.queue import payload

pytestmark = pytest.mark.unit


def build(spec: JobSpec, *, protected: bool) -> dict:
    job = {"id": 7, "name": spec.name, "stage": spec.stage, "spec": spec.model_dump(mode="json"),
           "protected": protected}  # fmt: skip
    project = {"id": 1, "name": "demo", "default_branch": "main"}
    pipeline = {"id": 3, "ref": "main", "sha": "a" * 40, "variables": {}}
    built = payload.build(job, project, pipeline, token="glcbt-x", repo_url="http://h/demo.git",
                          server_url="http://h", default_timeout=3600)  # fmt: skip
    return built.model_dump(mode="json", exclude_none=True)


def test_image_services_artifacts_are_copied() -> None:
    spec = JobSpec(
        name="build", stage="build", stage_idx=0, script=["make"],
        image={"name": "alpine:3", "entrypoint": [""], "pull_policy": ["if-not-present"]},
        services=[{"name": "postgres:16", "alias": "db"}],
        artifacts=[{"name": "artifacts", "paths": ["out/"], "when": "on_success", "artifact_type": "archive",
                    "artifact_format": "zip", "untracked": False}],
    )  # fmt: skip
    body = build(spec, protected=False)
    assert body["image"] == spec.image
    assert body["services"] == spec.services
    assert body["artifacts"] == spec.artifacts
    assert "run" not in body


@pytest.mark.parametrize(("protected", "suffix"), [(True, "protected"), (False, "non_protected")])
def test_cache_keys_get_gitlabs_protection_suffix(protected: bool, suffix: str) -> None:
    spec = JobSpec(
        name="build", stage="build", stage_idx=0, script=["make"],
        cache=[{"key": "deps", "paths": ["vendor/"], "policy": "pull-push", "fallback_keys": ["main-deps"]},
               {"paths": ["tmp/"], "policy": "pull"}],
    )  # fmt: skip
    caches = build(spec, protected=protected)["cache"]
    assert [c["key"] for c in caches] == [f"deps-{suffix}", f"default-{suffix}"]
    assert caches[0]["fallback_keys"] == [f"main-deps-{suffix}"]
    assert caches[1]["policy"] == "pull" and caches[1]["paths"] == ["tmp/"]


def test_predefined_variables_of_the_spec_and_raw_variables_reach_the_runner() -> None:
    spec = JobSpec(
        name="rspec 2/3", stage="test", stage_idx=2, script=["x"],
        variables={"A": "$B", "B": "b"}, raw_variables=["A"],
        predefined_variables={"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3"},
    )  # fmt: skip
    found = {v["key"]: v for v in build(spec, protected=False)["variables"]}
    assert (found["CI_NODE_INDEX"]["value"], found["CI_NODE_TOTAL"]["value"]) == ("2", "3")
    assert found["A"] == {"key": "A", "value": "$B", "public": True, "masked": False, "raw": True}
    assert "raw" not in found["B"]


def test_the_pipeline_source_is_the_one_rules_were_evaluated_with() -> None:
    """rules: `if: $CI_PIPELINE_SOURCE == "push"` chose the job; the job must see the same value
    (pipelines are created as GitLab does for a push: queue/pipelines.py, PipelineContext)."""
    spec = JobSpec(name="j", stage="test", stage_idx=0, script=["true"])
    variables = {v["key"]: v["value"] for v in build(spec, protected=False)["variables"]}
    assert variables["CI_PIPELINE_SOURCE"] == "push"


def test_a_variable_sends_file_and_raw_only_when_true() -> None:
    """GitLab's ``to_runner_variable``: ``file``/``raw`` present only when true, in every dump mode."""
    from conveyor.protocol.models import Variable

    for mode in ("json", "python"):
        assert Variable(key="K", value="v", file=True, raw=False).model_dump(mode=mode) == {
            "key": "K", "value": "v", "public": True, "masked": False, "file": True}  # fmt: skip
        assert Variable(key="K", value="v", file=None, raw=True).model_dump(mode=mode) == {
            "key": "K", "value": "v", "public": True, "masked": False, "raw": True}  # fmt: skip
        assert Variable(key="K", value="v", file=False).model_dump(mode=mode) == {"key": "K", "value": "v", "public": True, "masked": False}
    assert Variable(key="K", value="v", file=True).model_dump_json() == '{"key":"K","value":"v","public":true,"masked":false,"file":true}'


def test_the_201_body_is_what_json_dumps_of_the_dict_was() -> None:
    """``jobs/request`` answers ``model_dump_json()`` (issue 24): the same bytes as the dict it dumped
    through ``json.dumps`` before (compact, UTF-8 unescaped, keys in order, ``run`` never sent)."""
    import json

    spec = JobSpec(name="büild", stage="test", stage_idx=0, script=["echo ✓"], variables={"A": 'x"y\\z', "B": "é"})
    job = {"id": 7, "name": spec.name, "stage": spec.stage, "spec": spec.model_dump(mode="json"), "protected": False}
    built = payload.build(job, {"id": 1, "name": "demo", "default_branch": "main"},
                          {"id": 3, "ref": "main", "sha": "a" * 40, "variables": {"P": "1"}}, token="glcbt-x",
                          repo_url="http://h/demo.git", server_url="http://h", default_timeout=3600)  # fmt: skip
    before = json.dumps(built.model_dump(mode="json"), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    assert built.model_dump_json() == before and '"run"' not in before
