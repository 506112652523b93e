"""Job variables: GitLab's precedence, the predefined variables that follow from a job's spec
(spec section 13), expansion for display, and GitLab's slug.

Precedence, lowest first: predefined < global ``variables:`` (only those ``inherit:variables``
lets through) < ``workflow:rules:variables`` < job ``variables:`` (with ``parallel:matrix``
values) < ``rules:variables`` < project variables < pipeline variables (trigger, schedule,
manual run, API). ``JobSpec.variables`` holds the YAML levels merged, with the project and
pipeline variables of the same names already applied, so whoever appends it last gets
GitLab's result; values stay unexpanded (the runner expands them, ``raw_variables`` excepted).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from conveyor import ciconfig
from conveyor.ciconfig.context import slugify
from conveyor.ciconfig.expansion import expand_all
from conveyor.protocol.jobspec import JobSpec

SLUG_MAX_LENGTH = 63
ENVIRONMENT_SLUG_LENGTH = 24

__all__ = ["job_yaml_variables", "predefined_variables", "slugify", "expanded_variables"]


def job_yaml_variables(
    job: ciconfig.JobConfig,
    global_variables: Mapping[str, str],
    rule_variables: Mapping[str, str] | None,
    context: ciconfig.PipelineContext,
) -> dict[str, str]:
    """The YAML variables of a job by precedence, project/pipeline values applied on top."""
    inherit = job.inherit_variables
    if inherit is True:
        inherited = dict(global_variables)
    elif inherit is False:
        inherited = {}
    else:
        inherited = {k: v for k, v in global_variables.items() if k in inherit}
    merged = {**inherited, **job.variables, **(rule_variables or {})}
    outside = {**context.project_variables, **context.variables}
    return {name: outside.get(name, value) for name, value in merged.items()}


def predefined_variables(spec: JobSpec) -> dict[str, str]:
    """``CI_JOB_NAME``, ``CI_JOB_NAME_SLUG``, ``CI_JOB_STAGE``, ``CI_NODE_TOTAL`` of a job, and
    the pipeline-level ones ``build`` derived (``CI_NODE_INDEX``, ``CI_ENVIRONMENT_*``...)."""
    return {
        "CI_JOB_NAME": spec.name,
        "CI_JOB_NAME_SLUG": slugify(spec.name),
        "CI_JOB_STAGE": spec.stage,
        "CI_NODE_TOTAL": "1",
        **spec.predefined_variables,
    }


def environment_tier(name: str) -> str:
    """GitLab's deployment tier guessed from an environment's name (``Environment#guess_tier``)."""
    lowered = name.lower()
    for tier, pattern in _TIERS:
        if re.search(pattern, lowered):
            return tier
    return "other"


_TIERS = (
    ("development", r"(dev|review|trunk)"),
    ("testing", r"(test|tst|int|ac(ce|)pt|qa|qc|control|quality)"),
    ("staging", r"(st(a|)g|mod(e|)l|pre|demo|non)"),
    ("production", r"(pr(o|)d|live)"),
)


def environment_slug(name: str) -> str:
    """GitLab's ``CI_ENVIRONMENT_SLUG``: lowercase, ``[a-z0-9-]``, at most 24 characters; a
    name that had to change gets a 6-character suffix derived from it."""
    import hashlib

    slug = "".join(c if c.isascii() and c.isalnum() else "-" for c in name.lower())
    slug = slug.strip("-") or "env"
    if not slug[0].isalpha():
        slug = "env-" + slug
    if slug == name and len(slug) <= ENVIRONMENT_SLUG_LENGTH:
        return slug
    suffix = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{slug[: ENVIRONMENT_SLUG_LENGTH - 7].rstrip('-')}-{suffix}"


def expanded_variables(spec: JobSpec, context: ciconfig.PipelineContext) -> dict[str, str]:
    """The job's YAML variables as the job will see them: expanded against the predefined,
    project and pipeline variables and each other (``expand: false`` ones left as written)."""
    every = {
        **context.predefined(),
        **predefined_variables(spec),
        **context.project_variables,
        **context.variables,
        **spec.variables,
    }
    expanded = expand_all(every, raw=set(spec.raw_variables))
    return {name: expanded[name] for name in spec.variables}
