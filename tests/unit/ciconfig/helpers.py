"""Shorthands for ciconfig tests: load dedented YAML, or collect the issues it raises."""

from __future__ import annotations

import textwrap

import pytest

from conveyor import ciconfig


def load(text: str, **kwargs: str) -> ciconfig.PipelineConfig:
    return ciconfig.load(textwrap.dedent(text), **kwargs)


def issues(text: str, **kwargs: str) -> list[tuple[int | None, str]]:
    with pytest.raises(ciconfig.ConfigError) as caught:
        load(text, **kwargs)
    return [(issue.line, issue.message) for issue in caught.value.issues]
