"""``needs:`` validation for ``build``, with GitLab's texts (``yaml_processor.rb``, seeds).

Order, as GitLab: every job's needs are checked against the whole configuration (target defined,
name length, not in a later stage, no duplicates), then the needs graph for cycles; finally the
needs of the jobs that are added to the pipeline are resolved against the jobs that were (a job
with ``when: never`` is not added): an ``optional: true`` need to a missing job is dropped, any
other is an error.
"""

from __future__ import annotations

from collections import Counter

from conveyor import ciconfig
from conveyor.ciconfig import trigger

MAX_NEED_NAME_LENGTH = 128


def validate(config: ciconfig.PipelineConfig, issues: ciconfig.IssueCollector) -> None:
    """Check every job's needs against the whole configuration; issues go to ``issues``."""
    stage_idx = {stage: idx for idx, stage in enumerate(config.stages)}
    for job in config.jobs.values():
        _check_dependencies(job, config, stage_idx, issues)
        _check_on_stop(job, config, issues)
        if job.needs is None:
            continue
        local = [need for need in job.needs if not need.cross]
        for need in local:
            target = config.jobs.get(need.job)
            line = need.line or job.line
            if target is None:
                if not need.optional:
                    message = f"{job.name} job: undefined need: {need.job}"
                    issues.add(message, line, job=job.name, key="needs", file=job.file)
                continue
            if len(need.job) > MAX_NEED_NAME_LENGTH:
                issues.add(
                    f"{job.name} job: need `{need.job}` name is too long "
                    f"(maximum is {MAX_NEED_NAME_LENGTH} characters)",
                    line,
                    job=job.name,
                    key="needs",
                    file=job.file,
                )
            if stage_idx[target.stage] > stage_idx[job.stage]:
                issues.add(
                    f"{job.name} job: need {need.job} is not defined in current or prior stages",
                    line,
                    job=job.name,
                    key="needs",
                    file=job.file,
                )
        counts = Counter(need.job for need in local)
        duplicated = [name for name, count in counts.items() if count > 1]
        if duplicated:
            line = next(n.line for n in local if n.job == duplicated[0]) or job.line
            issues.add(
                f"{job.name} has the following needs duplicated: {', '.join(duplicated)}.",
                line,
                job=job.name,
                key="needs",
                file=job.file,
            )
    _check_cycles(config, issues)


def _check_dependencies(
    job: ciconfig.JobConfig,
    config: ciconfig.PipelineConfig,
    stage_idx: dict[str, int],
    issues: ciconfig.IssueCollector,
) -> None:
    """``dependencies:`` (and the jobs a dynamic child pipeline's config comes from) name
    defined jobs of the same or earlier stages (GitLab 14.2+, texts as its)."""
    for dependency in [*(job.dependencies or []), *trigger.artifact_jobs(job.trigger)]:
        target = config.jobs.get(dependency)
        if target is None:
            message = f"{job.name} job: undefined dependency: {dependency}"
        elif stage_idx[target.stage] > stage_idx[job.stage]:
            message = (
                f"{job.name} job: dependency {dependency} is not defined in current or prior stages"
            )
        else:
            continue
        issues.add(message, job.line, job=job.name, key="dependencies", file=job.file)


def _check_on_stop(job: ciconfig.JobConfig, config: ciconfig.PipelineConfig, issues: ciconfig.IssueCollector) -> None:
    """``environment:on_stop`` names a job that stops the same environment (GitLab's
    ``validate_on_stop_job!``, its texts)."""
    on_stop = (job.environment or {}).get("on_stop")
    if not on_stop:
        return
    target = config.jobs.get(on_stop)
    environment = target.environment if target is not None else None
    if target is None:
        problem = "is not defined"
    elif environment is None:
        problem = "does not have environment defined"
    elif environment.get("name") != (job.environment or {}).get("name"):
        problem = "have different environment name"
    elif environment.get("action") != "stop":
        problem = "needs to have action stop defined"
    else:
        return
    issues.add(f"{job.name} job: on_stop job {on_stop} {problem}", job.line, job=job.name, key="environment", file=job.file)


def resolve(
    job: ciconfig.JobConfig,
    config: ciconfig.PipelineConfig,
    added: dict[str, ciconfig.JobConfig],
    issues: ciconfig.IssueCollector,
) -> list[str] | None:
    """The names ``job`` needs among the ``added`` jobs; None when it has no ``needs:``.

    A need on a job that is defined but not added is an issue unless optional; a need on an
    undefined job was already reported by ``validate``.
    """
    if job.needs is None:
        return None
    names: list[str] = []
    for need in job.needs:
        if need.cross:
            continue  # another pipeline's job: never waited for, its artifacts fetched at start
        if need.job in added:
            names.append(need.job)
        elif need.job in config.jobs and not need.optional:
            issues.add(
                f"'{job.name}' job needs '{need.job}' job, but '{need.job}' does not exist in the "
                "pipeline. This might be because of the only, except, or rules keywords. To need a "
                "job that sometimes does not exist in the pipeline, use needs:optional.",
                need.line or job.line,
                job=job.name,
                key="needs",
                file=job.file,
            )
    return names


def _check_cycles(config: ciconfig.PipelineConfig, issues: ciconfig.IssueCollector) -> None:
    """One issue per strongly connected component of the needs graph (Tarjan, iterative)."""
    edges = {
        name: [n.job for n in job.needs or [] if not n.cross and n.job in config.jobs]
        for name, job in config.jobs.items()
    }
    for component in strongly_connected(edges):
        first = component[0]
        if len(component) > 1:
            listed = ", ".join(f'"{name}"' for name in component)
            detail = f"topological sort failed: [{listed}]"
        elif first in edges[first]:
            detail = f"self-dependency: {first}"
        else:
            continue
        issues.add(
            f"The pipeline has circular dependencies: {detail}",
            config.jobs[first].line,
            job=first,
            key="needs",
            file=config.jobs[first].file,
        )


def strongly_connected(edges: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components; each listed in the order of ``edges``' keys."""
    order = {name: idx for idx, name in enumerate(edges)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component, key=order.__getitem__))
    return sorted(components, key=lambda c: order[c[0]])
