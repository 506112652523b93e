"""Predefined variables that follow from a job's spec alone (spec section 13), and GitLab's slug.

The server adds the rest (pipeline, commit, project, server, runner and job-token variables).
Predefined variables rank lowest: YAML, project and pipeline variables override them.
"""

from __future__ import annotations

import re

from conveyor.protocol.jobspec import JobSpec

SLUG_MAX_LENGTH = 63
_NOT_SLUG = re.compile(r"[^a-z0-9]")


def slugify(value: str) -> str:
    """GitLab's slug (``CI_COMMIT_REF_SLUG``, ``CI_JOB_NAME_SLUG``): lowercased, every character
    outside ``[0-9a-z]`` replaced by ``-``, cut to 63 characters, no leading or trailing ``-``."""
    return _NOT_SLUG.sub("-", value.lower())[:SLUG_MAX_LENGTH].strip("-")


def predefined_variables(spec: JobSpec) -> dict[str, str]:
    """``CI_JOB_NAME``, ``CI_JOB_NAME_SLUG``, ``CI_JOB_STAGE`` and ``CI_NODE_TOTAL`` of a job."""
    return {
        "CI_JOB_NAME": spec.name,
        "CI_JOB_NAME_SLUG": slugify(spec.name),
        "CI_JOB_STAGE": spec.stage,
        "CI_NODE_TOTAL": "1",  # no parallel: yet
    }
