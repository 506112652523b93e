"""Table-driven cases: YAML in -> expanded jobs (a subset of each ``JobSpec``) or exact errors.

A case is ``Case(id, yaml, expect)``: ``expect`` is a dict of job name -> the ``JobSpec`` fields
to compare (``{}`` compares nothing but presence), a list of ``(line, message)`` errors, or a
list of job names (which jobs are in the pipeline, in order). ``load`` keyword arguments (a
pipeline context, an include resolver) go in ``options``.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

import pytest

from conveyor import ciconfig, pipeline

Expected = dict[str, dict[str, Any]] | list[tuple[int | None, str]] | list[str]


@dataclass(frozen=True)
class Case:
    id: str
    yaml: str
    expect: Expected
    options: dict[str, Any] = field(default_factory=dict)


def params(cases: list[Case]) -> Any:
    ids = [case.id for case in cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    return pytest.mark.parametrize("case", cases, ids=ids)


def expand(case: Case) -> list[Any]:
    config = ciconfig.load(textwrap.dedent(case.yaml), **case.options)
    return pipeline.build(config)


def check(case: Case) -> None:
    expect = case.expect
    if isinstance(expect, list) and expect and isinstance(expect[0], tuple):
        with pytest.raises(ciconfig.ConfigError) as caught:
            expand(case)
        found = [(issue.line, issue.message) for issue in caught.value.issues]
        assert found == expect
        return
    specs = expand(case)
    if isinstance(expect, list):
        assert [spec.name for spec in specs] == expect
        return
    by_name = {spec.name: spec.model_dump(mode="json") for spec in specs}
    assert sorted(by_name) == sorted(expect)
    for name, fields in expect.items():
        assert {key: by_name[name][key] for key in fields} == fields, name
