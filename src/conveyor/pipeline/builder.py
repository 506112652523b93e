"""``build``: a validated ``PipelineConfig`` -> the ``JobSpec`` list of a new pipeline."""

from __future__ import annotations

from conveyor import ciconfig
from conveyor.ciconfig.scheduling import Retry
from conveyor.pipeline import needs
from conveyor.protocol.enums import When
from conveyor.protocol.jobspec import JobSpec

# GitLab's text (Chain::Populate) both when no job is added and when only .pre/.post jobs are.
NOTHING_TO_RUN = (
    "Pipeline will not run for the selected trigger. "
    "The rules configuration prevented any jobs from being added to the pipeline."
)


def build(config: ciconfig.PipelineConfig) -> list[JobSpec]:
    """Expand ``config`` into the jobs of one pipeline.

    * ``when: never`` jobs are not added;
    * ``before_script`` (the job's own, else ``default:``) and ``script`` are joined into
      ``JobSpec.script``; ``after_script`` likewise falls back to ``default:``;
    * variables are the global ``variables:`` overlaid by the job's (the job wins);
    * ``stage_idx`` is the index of the job's stage in ``config.stages`` (``.pre`` is 0);
    * ``needs`` are validated (GitLab's texts) and resolved to names of added jobs;
      ``optional: true`` needs to jobs that are not added are dropped.

    Returns:
        The specs in stage order, then file order.

    Raises:
        ConfigError: with every needs problem, or when no job outside ``.pre``/``.post`` is
            added (GitLab does not create such a pipeline).
    """
    issues = ciconfig.IssueCollector(config.filename)
    needs.validate(config, issues)
    added = {name: job for name, job in config.jobs.items() if job.when is not When.NEVER}
    resolved = {name: needs.resolve(job, config, added, issues) for name, job in added.items()}
    if not any(job.stage not in ciconfig.EDGE_STAGES for job in added.values()):
        issues.add(NOTHING_TO_RUN, None)
    issues.raise_if_any()
    stage_idx = {stage: idx for idx, stage in enumerate(config.stages)}
    specs = [_spec(config, job, stage_idx[job.stage], resolved[job.name]) for job in added.values()]
    return sorted(specs, key=lambda spec: spec.stage_idx)  # stable: file order within a stage


def _spec(
    config: ciconfig.PipelineConfig,
    job: ciconfig.JobConfig,
    stage_idx: int,
    need_names: list[str] | None,
) -> JobSpec:
    default = config.default
    before_script = job.before_script if job.before_script is not None else default.before_script
    after_script = job.after_script if job.after_script is not None else default.after_script
    retry = job.retry or default.retry or Retry()
    interruptible = job.interruptible if job.interruptible is not None else default.interruptible
    return JobSpec(
        name=job.name,
        stage=job.stage,
        stage_idx=stage_idx,
        script=[*before_script, *job.script],
        after_script=list(after_script),
        variables={**config.variables, **job.variables},
        needs=need_names,
        when=job.when,
        allow_failure=job.allow_failure,
        timeout=job.timeout,
        tags=list(job.tags if job.tags is not None else default.tags),
        image=job.image if job.image is not None else default.image,
        services=list(job.services if job.services is not None else default.services or []),
        artifacts=list(job.artifacts if job.artifacts is not None else default.artifacts or []),
        cache=list(job.cache if job.cache is not None else default.cache or []),
        dependencies=job.dependencies,
        retry_max=retry.max,
        retry_when=list(retry.when),
        retry_exit_codes=list(retry.exit_codes),
        allow_failure_exit_codes=list(job.allow_failure_exit_codes),
        start_in=job.start_in,
        interruptible=bool(interruptible),
        resource_group=job.resource_group,
        environment=job.environment,
        coverage=job.coverage,
    )
