"""pipeline.slugify and predefined_variables (spec section 13)."""

from __future__ import annotations

import pytest

from conveyor.pipeline import predefined_variables, slugify
from conveyor.protocol import JobSpec

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "slug"),
    [
        ("main", "main"),
        ("Feature/ABC-123_x", "feature-abc-123-x"),
        ("--release--", "release"),
        ("deploy: [aws, app1]", "deploy---aws--app1"),
        ("rspec 1/5", "rspec-1-5"),
        ("Ünïcode", "n-code"),
        ("a" * 70, "a" * 63),
        ("a" * 62 + "/b", "a" * 62),
        ("", ""),
    ],
)
def test_slugify(value: str, slug: str) -> None:
    assert slugify(value) == slug


def test_predefined_variables() -> None:
    spec = JobSpec(name="Unit Tests: py3.12", stage="test", stage_idx=2, script=["pytest"])
    assert predefined_variables(spec) == {
        "CI_JOB_NAME": "Unit Tests: py3.12",
        "CI_JOB_NAME_SLUG": "unit-tests--py3-12",
        "CI_JOB_STAGE": "test",
        "CI_NODE_TOTAL": "1",
    }
