"""``image:`` and ``services:`` -> the job payload's ``image`` and ``services[]`` entries.

GitLab's entries: ``Entry::Image``, ``Entry::Service`` (both ``Imageable``), ``Entry::PullPolicy``.
The payload shape is runner-api.md 3.5: ``{"name", "entrypoint", "pull_policy",
"executor_opts": {"docker": {...}}}``, plus ``alias``, ``command`` and ``variables`` for services.
"""

from __future__ import annotations

from typing import Any

from conveyor.ciconfig import values
from conveyor.ciconfig.errors import IssueCollector
from conveyor.ciconfig.values import CountingReport, Report, is_string_list

PULL_POLICIES = ("always", "never", "if-not-present")
IMAGE_KEYS = frozenset({"name", "entrypoint", "ports", "pull_policy", "docker", "kubernetes"})
SERVICE_KEYS = IMAGE_KEYS | {"alias", "command", "variables"}
DOCKER_KEYS = frozenset({"platform", "user"})


def image(value: Any, location: str, report: Report) -> dict[str, Any] | None:
    """``image:``: a name, or ``{name, entrypoint, pull_policy, docker: {user, platform}}``."""
    return _imageable(value, location, report, IMAGE_KEYS)


def services(value: Any, location: str, report: Report) -> list[dict[str, Any]] | None:
    """``services:``: a list of names or ``{name, alias, entrypoint, command, variables}``."""
    if not isinstance(value, list):
        report(f"{location} config should be a array")
        return None
    parsed = [_imageable(item, f"{location}:service", report, SERVICE_KEYS) for item in value]
    if any(entry is None for entry in parsed):
        return None
    return [entry for entry in parsed if entry is not None]


def _imageable(
    value: Any, location: str, report: Report, allowed: frozenset[str]
) -> dict[str, Any] | None:
    if isinstance(value, str):
        if not value:
            report(f"{location} name can't be blank")
            return None
        return {"name": value}
    if not isinstance(value, dict):
        report(f"{location} config should be a hash or a string")
        return None
    before = CountingReport(report)
    if unknown := values.unknown_keys(value, allowed):
        before(f"{location} {unknown}")
    name = value.get("name")
    if not isinstance(name, str) or not name:
        before(f"{location} name can't be blank" if name in (None, "") else
               f"{location} name should be a string")
    entry: dict[str, Any] = {"name": name}
    if value.get("entrypoint") is not None:
        if is_string_list(value["entrypoint"]):
            entry["entrypoint"] = list(value["entrypoint"])
        else:
            before(f"{location} entrypoint should be an array of strings")
    if value.get("pull_policy") is not None:
        policy = _pull_policy(value["pull_policy"], f"{location}:pull_policy", before)
        if policy:
            entry["pull_policy"] = policy
    if value.get("docker") is not None:
        docker = _docker(value["docker"], f"{location}:docker", before)
        if docker:
            entry["executor_opts"] = {"docker": docker}
    if "alias" in allowed:
        _service_keys(value, location, entry, before)
    return None if before.count else entry


def _service_keys(value: dict[str, Any], location: str, entry: dict[str, Any], report: Report) -> None:
    alias = value.get("alias")
    if alias is not None:
        if isinstance(alias, str):
            entry["alias"] = alias
        else:
            report(f"{location} alias should be a string")
    command = value.get("command")
    if command is not None:
        if is_string_list(command):
            entry["command"] = list(command)
        else:
            report(f"{location} command should be an array of strings")
    if value.get("variables") is not None:
        collector = IssueCollector("")
        parsed = values.variables(
            value["variables"], f"{location}:variables", None, collector, allowed_data=("value",)
        )
        for issue in collector.issues:
            report(issue.message)
        entry["variables"] = [{"key": k, "value": v} for k, v in parsed.items()]


def _pull_policy(value: Any, location: str, report: Report) -> list[str] | None:
    if isinstance(value, str):
        if value not in PULL_POLICIES:
            report(f"{location} config is not included in the list")
            return None
        return [value]
    if not is_string_list(value):
        report(f"{location} config should be an array of strings or a string")
        return None
    unknown = [item for item in value if item not in PULL_POLICIES]
    if unknown or not value:
        report(f"{location} config contains unknown values: {', '.join(unknown)}"
               if unknown else f"{location} config can't be blank")
        return None
    return list(value)


def _docker(value: Any, location: str, report: Report) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        report(f"{location} config should be a hash")
        return None
    if unknown := values.unknown_keys(value, DOCKER_KEYS):
        report(f"{location} {unknown}")
        return None
    docker: dict[str, Any] = {}
    for key in ("platform", "user"):
        item = value.get(key)
        if item is None:
            continue
        if isinstance(item, str) or (key == "user" and isinstance(item, int) and not isinstance(item, bool)):
            docker[key] = item
        else:
            report(f"{location} {key} should be a string")
    return docker
