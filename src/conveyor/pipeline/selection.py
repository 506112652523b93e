"""Which jobs a pipeline gets, and how (GitLab's ``Build::Rules`` and ``Build::Policy``).

``workflow`` decides whether there is a pipeline at all; ``decide`` whether one job is added:
with ``rules``, the first matching rule's ``when`` (default: the job's) unless ``never``, its
``allow_failure``, ``start_in``, ``variables``, ``needs`` and ``interruptible`` overriding the
job's; without, ``only`` (default ``[branches, tags]``) and ``except``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from conveyor import ciconfig
from conveyor.ciconfig import policy, rules
from conveyor.ciconfig.model import Need
from conveyor.protocol.enums import When

WORKFLOW_FILTERED = "Pipeline filtered out by workflow rules."


@dataclass(frozen=True)
class Decision:
    """How an added job runs; None fields keep the job's own value."""

    when: When
    allow_failure: bool
    start_in: int | None
    variables: dict[str, str] | None = None
    needs: list[Need] | None = None
    interruptible: bool | None = None


def workflow(
    config: ciconfig.PipelineConfig, variables: Mapping[str, str]
) -> tuple[bool, dict[str, str], dict[str, object] | None]:
    """``(created, workflow variables, auto_cancel)`` from ``workflow:rules``."""
    flow = config.workflow
    if flow is None or flow.rules is None:
        return True, {}, flow.auto_cancel if flow else None
    matched = rules.first_match(flow.rules, variables, config.context)
    if matched is None or matched.when == "never":
        return False, {}, None
    return True, dict(matched.variables or {}), matched.auto_cancel or flow.auto_cancel


def decide(
    job: ciconfig.JobConfig, context: ciconfig.PipelineContext, variables: Mapping[str, str]
) -> Decision | None:
    """How ``job`` is added, or None when it is not."""
    if job.rules is not None:
        return _by_rules(job, context, variables)
    only = job.only or policy.DEFAULT_ONLY
    if not policy.satisfied(only, context, variables, only=True):
        return None
    if job.except_ is not None and policy.satisfied(job.except_, context, variables, only=False):
        return None
    return Decision(job.when, job.allow_failure, job.start_in)


def _by_rules(
    job: ciconfig.JobConfig, context: ciconfig.PipelineContext, variables: Mapping[str, str]
) -> Decision | None:
    matched = rules.first_match(job.rules or [], variables, context)
    if matched is None or matched.when == "never":
        return None
    start_in = None
    if matched.when == "delayed":
        when, start_in = When.DELAYED, matched.start_in
    elif matched.when is not None:
        when = When(matched.when)
    else:
        when = job.when
    if matched.allow_failure is not None:
        allow_failure = matched.allow_failure
    elif matched.when == "manual":
        # A manual job from rules blocks the pipeline unless allow_failure says otherwise.
        allow_failure = job.allow_failure if job.allow_failure_set else False
    else:
        allow_failure = job.allow_failure
    return Decision(when, allow_failure, start_in, matched.variables, matched.needs, matched.interruptible)
