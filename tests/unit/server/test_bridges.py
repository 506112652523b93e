"""A bridge's status for its downstream pipeline's (GitLab's depend and mirror strategies)."""

from __future__ import annotations

import pytest

from conveyor.server.queue.bridges import _followed_status, _member

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("strategy", "downstream", "expected"),
    [
        (None, "failed", None),  # no strategy: the bridge ended when the downstream was made
        ("depend", "success", "success"),
        ("depend", "failed", "failed"),
        ("depend", "canceled", "canceled"),
        ("depend", "skipped", "failed"),
        ("depend", "manual", None),  # stays running
        ("depend", "running", None),
        ("mirror", "skipped", "skipped"),
        ("mirror", "manual", "manual"),
        ("mirror", "running", "running"),
        ("mirror", "failed", "failed"),
    ],
)
def test_followed_status(strategy: str | None, downstream: str, expected: str | None) -> None:
    assert _followed_status({"trigger": {"include": [], "strategy": strategy}}, downstream) == expected


def test_artifact_member() -> None:
    import io
    import zipfile

    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr("gen/child.yml", "a: {script: x}\n")
    assert _member(data.getvalue(), "./gen/child.yml") == "a: {script: x}\n"
    assert _member(data.getvalue(), "missing.yml") == ""  # GitLab: "File `missing.yml` is empty!"
    assert _member(b"not a zip", "x.yml") is None


def test_downstream_variables_forward_dotenv_with_pipeline_variables() -> None:
    """YAML variables (expanded), then with forward:pipeline_variables the dependencies'
    dotenv and the pipeline variables, later winning (GitLab's Downstream::Generator)."""
    from conveyor.protocol import JobSpec
    from conveyor.server.queue.bridges import downstream_variables

    def spec(forward: dict) -> JobSpec:
        return JobSpec(name="t", stage="test", stage_idx=1, script=[], variables={"V": "v$BUILD", "P": "yaml"},
                       trigger={"include": [{"local": "c.yml"}], "forward": forward})  # fmt: skip

    every = {"V": "v1.2", "P": "yaml", "BUILD": "1.2", "CI_JOB_NAME": "t"}
    dotenv, pipeline = {"BUILD": "1.2", "P": "dotenv", "D": "d"}, {"P": "pipeline", "M": 1}
    default = downstream_variables(spec({"yaml_variables": True, "pipeline_variables": False}), every, pipeline, dotenv)
    assert default == {"V": "v1.2", "P": "yaml"}
    both = downstream_variables(spec({"yaml_variables": True, "pipeline_variables": True}), every, pipeline, dotenv)
    assert both == {"V": "v1.2", "P": "pipeline", "BUILD": "1.2", "D": "d", "M": "1"}
    assert downstream_variables(spec({"yaml_variables": False, "pipeline_variables": False}), every, pipeline, dotenv) == {}
