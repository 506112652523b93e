"""``trigger:`` of a bridge job (GitLab's ``Entry::Trigger``, ``Entry::Bridge``): a multi-project
trigger (``project``, ``branch``) or a child pipeline (``include``), with ``strategy`` and
``forward``. Returns the normalised trigger kept in ``JobSpec.trigger``:
``{"project", "branch"?, "inputs"?}`` or ``{"include": [entries]}``, plus ``strategy`` (None,
``depend``, ``mirror``) and ``forward`` ``{"yaml_variables", "pipeline_variables"}`` (GitLab's
defaults: true, false). ``trigger:inputs`` (17.11) are the downstream configuration's
``spec:inputs``: the target project's ``.gitlab-ci.yml``, or each file of a child's
``trigger:include`` (as ``include:inputs``, which they cannot be mixed with).
"""

from __future__ import annotations

from typing import Any

from conveyor.ciconfig.values import Report, unknown_keys

MAX_TRIGGER_INCLUDES = 3
STRATEGIES = ("depend", "mirror")
CHILD_KEYS = frozenset({"include", "strategy", "forward", "inputs"})
PROJECT_KEYS = frozenset({"project", "branch", "strategy", "forward", "inputs"})
FORWARD_KEYS = ("yaml_variables", "pipeline_variables")
BRIDGE_KEYS = frozenset(
    "trigger parallel extends stage only except rules variables inherit allow_failure when needs "
    "resource_group environment interruptible".split()
)
BRIDGE_WHEN = ("on_success", "on_failure", "always", "manual")


def parse(value: Any, location: str, report: Report) -> dict[str, Any] | None:
    """``trigger:`` of the bridge at ``location`` (``jobs:name``); None after reporting."""
    at = f"{location}:trigger"
    if isinstance(value, str):
        return {"project": value, "strategy": None, "forward": _forward(None, at, report)}
    if not isinstance(value, dict):
        report(f"{at} has to be either a string or a hash")
        return None
    child = "include" in value
    if unknown := unknown_keys(value, CHILD_KEYS if child else PROJECT_KEYS):
        report(f"{at} {unknown}")
        return None
    strategy = value.get("strategy")
    if strategy is not None and strategy not in STRATEGIES:
        report(f"{at} strategy should be depend or mirror")
        return None
    forward = _forward(value.get("forward"), at, report)
    if forward is None:
        return None
    inputs = value.get("inputs")
    if inputs is not None and not isinstance(inputs, dict):
        report(f"{at}:inputs config should be a hash")
        return None
    common = {"strategy": strategy, "forward": forward}
    if child:
        entries = _includes(value["include"], f"{at}:include", report)
        if entries is None:
            return None
        if inputs and any("inputs" in entry for entry in entries):
            report(f"{at} inputs cannot be used together with include:inputs")
            return None
        # trigger:inputs are the inputs of the child's configuration: its files' spec:inputs
        return {"include": [{**entry, "inputs": inputs} if inputs else entry for entry in entries], **common}
    common.update({"inputs": inputs} if inputs else {})
    project = value.get("project")
    if not project:
        report(f"{at} project can't be blank")
        return None
    if not isinstance(project, str):
        report(f"{at} project should be a string")
        return None
    branch = value.get("branch")
    if branch is not None and not isinstance(branch, str):
        report(f"{at} branch should be a string")
        return None
    return {"project": project, **({"branch": branch} if branch else {}), **common}


def _forward(value: Any, at: str, report: Report) -> dict[str, bool] | None:
    forward = {"yaml_variables": True, "pipeline_variables": False}
    if value is None:
        return forward
    if not isinstance(value, dict):
        report(f"{at}:forward config should be a hash")
        return None
    if unknown := unknown_keys(value, FORWARD_KEYS):
        report(f"{at}:forward {unknown}")
        return None
    for key in FORWARD_KEYS:
        if key in value:
            if not isinstance(value[key], bool):
                report(f"{at}:forward {key} should be a boolean value")
                return None
            forward[key] = value[key]
    return forward


def _includes(value: Any, at: str, report: Report) -> list[Any] | None:
    """The child's include entries (strings are local files), at most 3; each is checked again
    as an include when the child pipeline is created."""
    entries = value if isinstance(value, list) else [value]
    if len(entries) > MAX_TRIGGER_INCLUDES:
        report(f"{at} config is too long (maximum is {MAX_TRIGGER_INCLUDES})")
        return None
    result = []
    for entry in entries:
        if isinstance(entry, str):
            entry = {"local": entry}
        if not isinstance(entry, dict):
            report(f"{at} config should be a hash or a string")
            return None
        if "artifact" in entry and not entry.get("job"):
            report(f"{at} config must specify the job where to fetch the artifact from")
            return None
        result.append(dict(entry))
    return result


def artifact_jobs(trigger: dict[str, Any] | None) -> list[str]:
    """The jobs whose artifacts a dynamic child pipeline's config comes from."""
    return [str(entry["job"]) for entry in (trigger or {}).get("include", []) if "artifact" in entry]
