"""``load``: the text of a ``.gitlab-ci.yml`` -> ``PipelineConfig``, or one ``ConfigError`` with
every problem found.

Processing order follows GitLab's (spec section 0): YAML load (anchors, aliases, merge keys,
``spec:inputs`` interpolation) -> ``include`` -> ``extends`` -> ``!reference`` -> global
keywords and edge stages -> jobs (defaults and ``inherit``) -> ``parallel`` -> schema checks.
Which jobs run (``workflow:rules``, ``rules``, ``only``/``except``) is decided by
``pipeline.build`` from the ``PipelineContext`` kept in the result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from conveyor.ciconfig import extends, inputs, parallel, references, schema, toplevel, values
from conveyor.ciconfig import jobs as job_entries
from conveyor.ciconfig.context import PipelineContext
from conveyor.ciconfig.errors import ConfigError, ConfigIssue, IssueCollector
from conveyor.ciconfig import includes
from conveyor.ciconfig import merge
from conveyor.ciconfig.merge import TOO_BIG, Budget, TooBig
from conveyor.ciconfig.model import JobConfig, PipelineConfig
from conveyor.ciconfig.resolver import IncludeResolver, MemoryResolver
from conveyor.ciconfig.yamlsource import MAX_DEPTH, TOO_DEEP, YamlMap, parse

MAX_JOBS = 10_000


def load(
    text: str,
    *,
    filename: str = ".gitlab-ci.yml",
    context: PipelineContext | None = None,
    resolver: IncludeResolver | None = None,
    inputs: Mapping[str, Any] | None = None,
) -> PipelineConfig:
    """Parse, merge and validate a CI configuration.

    Args:
        text: the main file's content.
        filename: its path, used in error locations.
        context: the pipeline being created (ref, source, variables, changed files); a push
            to ``main`` when None.
        resolver: reads included files; without one, any include is reported missing.
        inputs: values for the main file's ``spec:inputs``.

    Raises:
        ConfigError: with one ``ConfigIssue`` per problem, each with its file and line.
    """
    context = context or PipelineContext()
    issues = IssueCollector(filename)
    body = _main_body(text, filename, inputs, context, issues)
    try:
        body = includes.Includer(context, resolver or MemoryResolver(), issues).expand(body)
    except includes.TooManyIncludes:
        message = f"Maximum of {includes.MAX_INCLUDES} nested includes are allowed!"
        issues.add(message, body.lines.get("include"), key="include")
    except includes.IncludesTooBig:
        issues.add(includes.TOO_BIG, body.lines.get("include"), key="include")
    issues.raise_if_any()
    budget = Budget()
    try:
        body = extends.resolve(body, issues, budget)
        issues.raise_if_any()
        body = references.resolve(body, issues, budget)
        issues.raise_if_any()
        if merge.depth(body, MAX_DEPTH) > MAX_DEPTH:  # !reference can nest values further
            raise ConfigError([ConfigIssue(TOO_DEEP, filename, None)])
        return _config(body, filename, context, issues)
    except TooBig:
        raise ConfigError([ConfigIssue(TOO_BIG, filename, None)]) from None
    except RecursionError:  # a last line of defence: nesting is bounded above
        raise ConfigError([ConfigIssue(TOO_DEEP, filename, None)]) from None


def _main_body(
    text: str, filename: str, given: Mapping[str, Any] | None, context: PipelineContext, issues: IssueCollector
) -> YamlMap:
    document = parse(text, filename)
    body = document.body
    if not isinstance(body, YamlMap):
        kind = "an empty document" if body is None else f"a {type(body).__name__}"
        message = f"Invalid configuration format: the top level must be a mapping, not {kind}"
        raise ConfigError([ConfigIssue(message, filename, None)])
    variables = context.include_variables()
    found, errors = inputs.resolve(document.header, given, variables)
    if found is not None and not errors:
        body = inputs.interpolate(body, found, variables, errors)
    header_line = document.header.line if document.header is not None else None
    for message in errors:
        issues.add(message, header_line, key="spec")
    issues.raise_if_any()
    return body


def _config(body: YamlMap, filename: str, context: PipelineContext, issues: IssueCollector) -> PipelineConfig:
    stages = toplevel.stages(body, issues)
    variables, raw_variables = toplevel.global_variables(body, issues)
    default = toplevel.default(body, issues)
    workflow = toplevel.workflow(body, issues)
    jobs = _jobs(body, stages, default, issues)
    expanded, groups = parallel.expand(jobs)
    if len(expanded) > MAX_JOBS:
        issues.add(f"The pipeline is too big: more than {MAX_JOBS} jobs", None)
    expanded = {
        name: dataclasses.replace(
            job,
            needs=parallel.expand_needs(job.needs, groups),
            dependencies=parallel.expand_names(job.dependencies, groups),
        )
        for name, job in expanded.items()
    }
    if not issues:
        schema.check(body, issues)
    issues.raise_if_any()
    return PipelineConfig(
        stages=stages,
        variables=variables,
        jobs=expanded,
        default=default,
        filename=filename,
        raw_variables=raw_variables,
        workflow=workflow,
        context=context,
        parallel_groups=groups,
    )


def _jobs(body: YamlMap, stages: list[str], default: Any, issues: IssueCollector) -> dict[str, JobConfig]:
    jobs: dict[str, JobConfig] = {}
    visible = 0
    for key, value in body.items():
        line = body.lines.get(key, body.line)
        if key in toplevel.GLOBAL_KEYWORDS or (isinstance(key, str) and key.startswith(".")):
            continue
        name = _job_name(key, line, issues)
        if name is None:
            continue
        visible += 1
        if not isinstance(value, YamlMap):
            issues.add(
                f"jobs {name} config should implement the script:, run:, or trigger: keyword",
                line, job=name, file=body.file_of(key) or None,
            )
            continue
        job = job_entries.parse_job(name, value, line, stages, issues, default)
        if job is not None:
            jobs[name] = job
    if not visible:
        issues.add("jobs config should contain at least one visible job", None)
    return jobs


def _job_name(key: Any, line: int, issues: IssueCollector) -> str | None:
    """Job names are strings; numbers are accepted as text, ``true``/``false``/``null`` are not."""
    if isinstance(key, str):
        return key
    if isinstance(key, int | float) and not isinstance(key, bool):
        return values.scalar_text(key)
    shown = "null" if key is None else values.scalar_text(key) if values.is_scalar(key) else key
    issues.add(f"jobs:{shown} job name must be a string; quote it", line)
    return None
