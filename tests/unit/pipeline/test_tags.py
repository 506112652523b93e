"""Job tags: parsed, inherited from default:, overridden by the job, validated."""

from __future__ import annotations

import pytest

from conveyor import ciconfig, pipeline

pytestmark = pytest.mark.unit


def specs(text: str) -> dict[str, list[str]]:
    return {spec.name: spec.tags for spec in pipeline.build(ciconfig.load(text))}


def test_job_tags_reach_the_job_spec() -> None:
    assert specs("a:\n  script: x\n  tags: [docker, linux, docker]\nb:\n  script: x\n") == {
        "a": ["docker", "linux"],
        "b": [],
    }


def test_default_tags_are_inherited_and_a_job_replaces_them() -> None:
    text = "default:\n  tags: [shared]\na:\n  script: x\nb:\n  script: x\n  tags: [gpu]\nc:\n  script: x\n  tags: []\n"
    assert specs(text) == {"a": ["shared"], "b": ["gpu"], "c": []}


def test_numbers_are_taken_as_text() -> None:
    assert specs("a:\n  script: x\n  tags: [1.5, arm64]\n") == {"a": ["1.5", "arm64"]}


@pytest.mark.parametrize("value", ["docker", "{a: 1}", "[[a]]", "[null]", "[true]"])
def test_tags_must_be_an_array_of_strings(value: str) -> None:
    with pytest.raises(ciconfig.ConfigError) as caught:
        ciconfig.load(f"job:\n  script: x\n  tags: {value}\n")
    assert [(i.line, i.message) for i in caught.value.issues] == [(3, "jobs:job:tags config should be an array of strings")]
