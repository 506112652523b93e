from __future__ import annotations

import pytest

from conveyor.runner.script.variables import JobVariable, expand, is_true, lookup, masked_values, resolve

pytestmark = pytest.mark.unit


def test_expand_forms() -> None:
    values = {"A": "1", "B_2": "two"}
    assert expand("$A-${B_2}-$MISSING-$$A-$", values) == "1-two--$A-$"
    assert expand("cost: $ 5 and ${A}x", values) == "cost: $ 5 and 1x"


def test_resolve_last_wins_expands_once_and_keeps_raw(job_factory) -> None:
    job = job_factory(
        variables=[
            {"key": "BASE", "value": "first"},
            {"key": "BASE", "value": "/opt"},
            {"key": "DERIVED", "value": "$BASE/bin:${CI_PROJECT_DIR}"},
            {"key": "RAW", "value": "$BASE stays", "raw": True},
            {"key": "CHAIN", "value": "$DERIVED"},
        ]
    )
    resolved = resolve(job, [JobVariable("CI_SERVER", "yes")], [JobVariable("CI_PROJECT_DIR", "/b/p")])
    by_key = {v.key: v.value for v in resolved}
    assert [v.key for v in resolved] == ["CI_SERVER", "BASE", "DERIVED", "RAW", "CHAIN", "CI_PROJECT_DIR"]
    assert by_key["BASE"] == "/opt"
    assert by_key["DERIVED"] == "/opt/bin:/b/p"
    assert by_key["RAW"] == "$BASE stays"
    assert by_key["CHAIN"] == "$BASE/bin:${CI_PROJECT_DIR}"  # expanded once, like the Go runner


def test_job_variables_override_runner_defined_but_not_overrides(job_factory) -> None:
    job = job_factory(variables=[{"key": "CI_SERVER", "value": "mine"}, {"key": "CI_PROJECT_DIR", "value": "/evil"}])
    resolved = resolve(job, [JobVariable("CI_SERVER", "yes")], [JobVariable("CI_PROJECT_DIR", "/b/p")])
    assert lookup(resolved, "CI_SERVER") == "mine"
    assert lookup(resolved, "CI_PROJECT_DIR") == "/b/p"


def test_masked_values_include_the_job_token(job_factory) -> None:
    job = job_factory(variables=[{"key": "S", "value": "s3cr3t", "masked": True}, {"key": "P", "value": "public"}])
    assert masked_values(job) == ["s3cr3t", "glcbt-JOBTOKEN"]


def test_is_true() -> None:
    variables = [JobVariable("CI_DEBUG_TRACE", "TRUE"), JobVariable("OTHER", "0")]
    assert is_true(variables, "CI_DEBUG_TRACE")
    assert not is_true(variables, "OTHER")
    assert not is_true(variables, "MISSING")
