"""Validation against GitLab's JSON schema for ``.gitlab-ci.yml`` (placeholder until wired)."""

from __future__ import annotations

from typing import Any

from conveyor.ciconfig.errors import IssueCollector


def check(body: Any, issues: IssueCollector) -> None:
    return None
