"""Keywords that shape when and how often a job runs, and what it deploys: ``retry``,
``start_in``, ``interruptible``, ``resource_group``, ``environment``, ``coverage``,
``dependencies``. GitLab's entries: ``Entry::Retry``, ``Entry::Environment``, ``Entry::Coverage``,
``Entry::Job`` (start_in, dependencies), ``Entry::Processable`` (resource_group).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from conveyor.ciconfig import duration, values
from conveyor.ciconfig.values import CountingReport, Report, is_int, is_string_list

RETRY_WHEN = (
    "always unknown_failure script_failure api_failure stuck_or_timeout_failure "
    "runner_system_failure runner_unsupported stale_schedule job_execution_timeout "
    "archived_failure unmet_prerequisites scheduler_failure data_integrity_failure "
    "missing_dependency_failure"
).split()
RETRY_KEYS = frozenset({"max", "when", "exit_codes"})
MAX_START_IN_SECONDS = 7 * 86400
ENVIRONMENT_KEYS = frozenset(
    "name url action on_stop auto_stop_in kubernetes deployment_tier".split()
)
ENVIRONMENT_ACTIONS = ("start", "prepare", "stop", "verify", "access")
DEPLOYMENT_TIERS = ("production", "staging", "testing", "development", "other")
_ENVIRONMENT_NAME = re.compile(r"^[a-zA-Z0-9 \-_/${}.]+$")
ENVIRONMENT_NAME_MESSAGE = (
    "can contain only letters, digits, '-', '_', '/', '$', '{', '}', '.', and spaces, "
    "but it cannot start or end with '/'"
)
MAX_ENVIRONMENT_URL = 255


@dataclass(frozen=True)
class Retry:
    """``retry:`` normalised: ``max`` 0..2, ``when`` failure reasons, ``exit_codes``."""

    max: int = 0
    when: list[str] = field(default_factory=lambda: ["always"])
    exit_codes: list[int] = field(default_factory=list)


def retry(value: Any, report: Report) -> Retry | None:
    """``retry: 2`` or ``{max, when, exit_codes}``; GitLab words these errors ``retry ...``."""
    if is_int(value):
        return Retry(max=value) if _retry_max(value, "retry config", report) else None
    if not isinstance(value, dict):
        report("retry config has to be either an integer or a hash")
        return None
    counted = CountingReport(report)
    if unknown := values.unknown_keys(value, RETRY_KEYS):
        counted(f"retry {unknown}")
    maximum = value.get("max", 0)
    if maximum is not None:
        _retry_max(maximum, "retry max", counted)
    when = value.get("when", [] if "exit_codes" in value else "always")  # GitLab's AutoRetry default
    when_list = [when] if isinstance(when, str) else when
    if not is_string_list(when_list):
        counted("retry when should be an array of strings or a string")
    elif isinstance(when, str) and when not in RETRY_WHEN:
        counted("retry when is not included in the list")
    elif unknown_when := [item for item in when_list if item not in RETRY_WHEN]:
        counted(f"retry when contains unknown values: {', '.join(unknown_when)}")
    codes = value.get("exit_codes", [])
    codes_list = [codes] if is_int(codes) else codes
    if not (isinstance(codes_list, list) and all(is_int(code) for code in codes_list)):
        counted("retry exit_codes should be an array of integers or an integer")
    if counted.count:
        return None
    return Retry(max=maximum or 0, when=list(when_list), exit_codes=list(codes_list))


def _retry_max(value: Any, location: str, report: Report) -> bool:
    if not is_int(value):
        report(f"{location} must be an integer" if isinstance(value, float) else f"{location} is not a number")
        return False
    if value < 0:
        report(f"{location} must be greater than or equal to 0")
        return False
    if value > 2:
        report(f"{location} must be less than or equal to 2")
        return False
    return True


def start_in(value: Any, location: str, report: Report) -> int | None:
    """``start_in`` of a ``when: delayed`` job: 1 second to 1 week, in seconds."""
    seconds = duration.parse_seconds(value) if isinstance(value, str | int) else None
    if not seconds:
        report(f"{location} start_in should be a duration")
        return None
    if seconds > MAX_START_IN_SECONDS:
        report(f"{location} start_in should not exceed the limit")
        return None
    return seconds


def interruptible(value: Any, location: str, report: Report) -> bool | None:
    if not isinstance(value, bool):
        report(f"{location}:interruptible config should be a boolean value")
        return None
    return value


def resource_group(value: Any, location: str, report: Report) -> str | None:
    if not isinstance(value, str):
        report(f"{location} resource_group should be a string")
        return None
    return value


def dependencies(value: Any, location: str, report: Report) -> list[str] | None:
    if not is_string_list(value):
        report(f"{location} dependencies should be an array of strings")
        return None
    return list(value)


def coverage(value: Any, location: str, report: Report) -> str | None:
    """``coverage: /regex/`` -> the regex without its slashes, as GitLab stores it."""
    if isinstance(value, str) and len(value) >= 2 and value.startswith("/") and value.endswith("/"):
        inner = value[1:-1]
        try:
            re.compile(inner)
        except re.error:
            pass
        else:
            return inner
    report(f"{location}:coverage config must be a regular expression")
    return None


def environment(value: Any, location: str, report: Report) -> dict[str, Any] | None:
    """``environment:``: a name, or ``{name, url, action, on_stop, auto_stop_in, ...}``."""
    loc = f"{location}:environment"
    if isinstance(value, str):
        value = {"name": value}
    elif not isinstance(value, dict):
        report(f"{loc} config should be a hash or a string")
        return None
    counted = CountingReport(report)
    if unknown := values.unknown_keys(value, ENVIRONMENT_KEYS):
        counted(f"{loc} {unknown}")
    name = value.get("name")
    if name is None or name == "":
        counted(f"{loc} name can't be blank")
    elif not isinstance(name, str) or not _ENVIRONMENT_NAME.match(name) or name.startswith("/") or name.endswith("/"):
        counted(f"{loc} name {ENVIRONMENT_NAME_MESSAGE}")
    url = value.get("url")
    if url is not None and (not isinstance(url, str) or len(url) > MAX_ENVIRONMENT_URL):
        counted(f"{loc} url should be a string of at most {MAX_ENVIRONMENT_URL} characters")
    action = value.get("action", "start")
    if action not in ENVIRONMENT_ACTIONS:
        counted(f"{loc} action should be {', '.join(ENVIRONMENT_ACTIONS[:-1])} or {ENVIRONMENT_ACTIONS[-1]}")
    tier = value.get("deployment_tier")
    if tier is not None and tier not in DEPLOYMENT_TIERS:
        counted(f"{loc} deployment_tier must be one of {', '.join(DEPLOYMENT_TIERS)}")
    if value.get("on_stop") is not None and not isinstance(value["on_stop"], str):
        counted(f"{loc} on_stop should be a string")
    if value.get("kubernetes") is not None and not isinstance(value["kubernetes"], dict):
        counted(f"{loc} kubernetes should be a hash")
    stop_in = value.get("auto_stop_in")
    if stop_in is not None and not (
        isinstance(stop_in, str) and (stop_in == "never" or duration.parse_seconds(stop_in) is not None)
    ):
        counted(f"{loc} auto_stop_in should be a duration")
    if counted.count:
        return None
    return {**{k: v for k, v in value.items() if v is not None}, "action": action}
