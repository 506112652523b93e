"""``build``: a validated ``PipelineConfig`` -> the ``JobSpec`` list of a new pipeline."""

from __future__ import annotations

import dataclasses

from conveyor import ciconfig
from conveyor.ciconfig import artifacts, parallel
from conveyor.ciconfig.expansion import expand_all, expand_existing
from conveyor.ciconfig.scheduling import Retry
from conveyor.pipeline import needs, selection
from conveyor.pipeline import variables as job_variables
from conveyor.protocol.jobspec import JobSpec

# GitLab's text (Chain::Populate) both when no job is added and when only .pre/.post jobs are.
NOTHING_TO_RUN = (
    "Pipeline will not run for the selected trigger. "
    "The rules configuration prevented any jobs from being added to the pipeline."
)


def validate(config: ciconfig.PipelineConfig) -> None:
    """The logical checks that do not depend on the pipeline's context (GitLab's lint
    without a simulation): ``needs`` and ``dependencies`` targets, their stages, cycles.

    Raises:
        ConfigError: with every problem found.
    """
    issues = ciconfig.IssueCollector(config.filename)
    needs.validate(config, issues)
    issues.raise_if_any()


def build(config: ciconfig.PipelineConfig) -> list[JobSpec]:
    """Expand ``config`` into the jobs of one pipeline, for ``config.context``.

    * ``workflow:rules`` decide whether there is a pipeline; its variables join the globals;
    * each job's ``rules`` (or ``only``/``except``) decide whether it is added and how;
    * ``before_script`` and ``script`` are joined into ``JobSpec.script``;
    * variables follow GitLab's precedence (see ``variables``);
    * ``stage_idx`` is the index of the job's stage in ``config.stages`` (``.pre`` is 0);
    * ``needs`` are validated (GitLab's texts) and resolved to names of added jobs;
      ``optional: true`` needs to jobs that are not added are dropped.

    Returns:
        The specs in stage order, then file order.

    Raises:
        ConfigError: when workflow rules filter the pipeline out, with every needs problem,
            or when no job outside ``.pre``/``.post`` is added.
    """
    issues = ciconfig.IssueCollector(config.filename)
    context = config.context
    predefined = context.predefined()
    outside = {**context.project_variables, **context.variables}
    created, workflow_variables, _ = selection.workflow(
        config, expand_all({**predefined, **config.variables, **outside}, config.raw_variables)
    )
    if not created:
        issues.add(selection.WORKFLOW_FILTERED, None)
        issues.raise_if_any()
    global_variables = {**config.variables, **workflow_variables}
    pipeline_name = _pipeline_name(config, {**predefined, **global_variables, **outside})
    needs.validate(config, issues)
    added: dict[str, tuple[ciconfig.JobConfig, selection.Decision, dict[str, str]]] = {}
    for name, job in config.jobs.items():
        yaml = job_variables.job_yaml_variables(job, global_variables, None, context)
        seen = expand_all({**predefined, **context.user_variables, **_job_predefined(job), **yaml, **outside}, job.raw_variables)
        decision = selection.decide(job, context, seen)
        if decision is None:
            continue
        if decision.needs is not None:
            job = dataclasses.replace(job, needs=parallel.expand_needs(decision.needs, config.parallel_groups))
            for need in job.needs or []:
                if not need.cross and need.job not in config.jobs and not need.optional:
                    message = f"{job.name} job: undefined need: {need.job}"
                    issues.add(message, need.line or job.line, job=job.name, key="needs", file=job.file)
        if decision.variables:
            yaml = job_variables.job_yaml_variables(job, global_variables, decision.variables, context)
        added[name] = (job, decision, yaml)
    jobs_added = {name: item[0] for name, item in added.items()}
    resolved = {name: needs.resolve(job, config, jobs_added, issues) for name, job in jobs_added.items()}
    if not any(job.stage not in ciconfig.EDGE_STAGES for job in jobs_added.values()):
        issues.add(NOTHING_TO_RUN, None)
    issues.raise_if_any()
    stage_idx = {stage: idx for idx, stage in enumerate(config.stages)}
    specs = [
        _spec(config, job, decision, yaml, stage_idx[job.stage], resolved[name], pipeline_name)
        for name, (job, decision, yaml) in added.items()
    ]
    return sorted(specs, key=lambda spec: spec.stage_idx)  # stable: file order within a stage


def _pipeline_name(config: ciconfig.PipelineConfig, variables: dict[str, str]) -> str | None:
    name = config.workflow.name if config.workflow else None
    if not name:
        return None
    return expand_existing(name, expand_all(variables)).strip() or None


def _job_predefined(job: ciconfig.JobConfig) -> dict[str, str]:
    found = {
        "CI_JOB_NAME": job.name,
        "CI_JOB_NAME_SLUG": job_variables.slugify(job.name),
        "CI_JOB_STAGE": job.stage,
        "CI_NODE_TOTAL": str(job.node_total),
    }
    if job.node_index is not None:
        found["CI_NODE_INDEX"] = str(job.node_index)
    return found


def _spec(
    config: ciconfig.PipelineConfig,
    job: ciconfig.JobConfig,
    decision: selection.Decision,
    yaml: dict[str, str],
    stage_idx: int,
    need_names: list[str] | None,
    pipeline_name: str | None,
) -> JobSpec:
    context = config.context
    outside = {**context.project_variables, **context.variables}
    every = expand_all({**context.predefined(), **_job_predefined(job), **yaml, **outside}, job.raw_variables)
    predefined: dict[str, str] = {}
    if job.node_index is not None:
        predefined.update(CI_NODE_INDEX=str(job.node_index), CI_NODE_TOTAL=str(job.node_total))
    if pipeline_name:
        predefined["CI_PIPELINE_NAME"] = pipeline_name
    environment = _environment(job.environment, every, predefined)
    retry = job.retry or Retry()
    interruptible = decision.interruptible if decision.interruptible is not None else job.interruptible
    return JobSpec(
        name=job.name,
        stage=job.stage,
        stage_idx=stage_idx,
        script=[*(job.before_script or []), *job.script],
        after_script=list(job.after_script or []),
        variables=yaml,
        needs=need_names,
        when=decision.when,
        allow_failure=decision.allow_failure,
        timeout=job.timeout,
        tags=[expand_existing(tag, every) for tag in job.tags or []],
        image=job.image,
        services=list(job.services or []),
        artifacts=list(job.artifacts or []),
        cache=[{**cache, "key": artifacts.cache_key(cache.get("key", "default"), context.file_hashes)} for cache in job.cache or []],
        dependencies=_dependencies(job, need_names),
        cross_needs=_cross_needs(job),
        trigger=job.trigger,
        retry_max=retry.max,
        retry_when=list(retry.when),
        retry_exit_codes=list(retry.exit_codes),
        allow_failure_exit_codes=list(job.allow_failure_exit_codes),
        start_in=decision.start_in if job.rules is not None else job.start_in,
        interruptible=bool(interruptible),
        resource_group=expand_existing(job.resource_group, every) if job.resource_group else None,
        environment=environment,
        coverage=job.coverage,
        raw_variables=_raw_names(config, job, decision, yaml),
        predefined_variables=predefined,
    )


def _dependencies(job: ciconfig.JobConfig, need_names: list[str] | None) -> list[str] | None:
    """``dependencies:``, else the needs whose ``artifacts`` is not false when any is (None:
    the server's default, the needs or every earlier stage)."""
    if job.dependencies is not None or job.needs is None or need_names is None:
        return job.dependencies
    without = {need.job for need in job.needs if not need.artifacts}
    if not without:
        return None
    return [name for name in need_names if name not in without]


def _cross_needs(job: ciconfig.JobConfig) -> list[dict[str, object]]:
    """``needs:pipeline:job`` and ``needs:project`` entries, for the server to resolve."""
    found: list[dict[str, object]] = []
    for need in job.needs or []:
        if need.cross:
            where = {"pipeline": need.pipeline} if need.pipeline is not None else {"project": need.project, "ref": need.ref}
            found.append({**where, "job": need.job, "artifacts": need.artifacts})
    return found


def _raw_names(
    config: ciconfig.PipelineConfig,
    job: ciconfig.JobConfig,
    decision: selection.Decision,
    yaml: dict[str, str],
) -> list[str]:
    """The variables written with ``expand: false`` at the level whose value the job keeps."""
    raw = []
    for name in yaml:
        if decision.variables and name in decision.variables:
            continue
        own = name in job.variables
        if (own and name in job.raw_variables) or (not own and name in config.raw_variables):
            raw.append(name)
    return raw


def _environment(
    environment: dict[str, object] | None, variables: dict[str, str], predefined: dict[str, str]
) -> dict[str, object] | None:
    """The environment with its name and URL expanded, and ``CI_ENVIRONMENT_*`` set."""
    if environment is None:
        return None
    expanded = dict(environment)
    for key in ("name", "url"):
        if isinstance(expanded.get(key), str):
            expanded[key] = expand_existing(str(expanded[key]), variables)
    name = str(expanded["name"])
    predefined["CI_ENVIRONMENT_NAME"] = name
    predefined["CI_ENVIRONMENT_SLUG"] = job_variables.environment_slug(name)
    predefined["CI_ENVIRONMENT_ACTION"] = str(expanded.get("action", "start"))
    if expanded.get("url"):
        predefined["CI_ENVIRONMENT_URL"] = str(expanded["url"])
    predefined["CI_ENVIRONMENT_TIER"] = str(expanded.get("deployment_tier") or job_variables.environment_tier(name))
    return expanded
