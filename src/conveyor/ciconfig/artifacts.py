"""``artifacts:`` and ``cache:`` -> the job payload's ``artifacts[]`` and ``cache[]`` entries.

GitLab's entries: ``Entry::Artifacts``, ``Entry::Reports``, ``Entry::Caches``/``Entry::Cache``,
``Entry::Key``. Payload shapes are runner-api.md 3.5. ``artifacts`` gives one ``archive`` entry
(zip) when it has ``paths`` or ``untracked``, then one entry per report (always uploaded).
"""

from __future__ import annotations

import hashlib
from typing import Any

from conveyor.ciconfig import duration, flatten, values
from conveyor.ciconfig.values import CountingReport, Report, is_string_list

ARTIFACT_KEYS = frozenset(
    "name untracked paths reports when expire_in expose_as exclude public access".split()
)
WHEN_VALUES = ("on_success", "on_failure", "always")
ACCESS_VALUES = ("none", "developer", "all")
REPORT_TYPES = frozenset(
    "junit codequality sast secret_detection dependency_scanning container_scanning dast "
    "license_scanning performance browser_performance load_performance metrics requirements "
    "requirements_v2 coverage_report cobertura terraform accessibility cluster_image_scanning "
    "dotenv lsif api_fuzzing coverage_fuzzing cyclonedx annotations repository_xray".split()
)
RAW_REPORTS = frozenset(
    "codequality sast secret_detection dependency_scanning container_scanning dast "
    "license_scanning performance browser_performance load_performance requirements "
    "requirements_v2 terraform accessibility cluster_image_scanning api_fuzzing "
    "coverage_fuzzing cyclonedx annotations repository_xray".split()
)
CACHE_KEYS = frozenset("key untracked paths when policy unprotect fallback_keys".split())
CACHE_POLICIES = ("pull-push", "push", "pull")
MAX_CACHES = 4
MAX_FALLBACK_KEYS = 5
MAX_KEY_FILES = 2


def artifacts(value: Any, location: str, report: Report) -> list[dict[str, Any]] | None:
    """``artifacts:`` -> payload entries; None after reporting a problem."""
    if not isinstance(value, dict):
        report(f"{location} config should be a hash")
        return None
    counted = CountingReport(report)
    if unknown := values.unknown_keys(value, ARTIFACT_KEYS):
        counted(f"{location} {unknown}")
    if "access" in value and "public" in value:
        counted(f"{location} config these keys cannot be used together: access, public")
    name = _optional(value, "name", str, f"{location} name should be a string", counted)
    untracked = _optional(value, "untracked", bool, f"{location} untracked should be a boolean value", counted)
    _optional(value, "public", bool, f"{location} public should be a boolean value", counted)
    paths = _strings(value, "paths", location, counted)
    exclude = _strings(value, "exclude", location, counted)
    when = value.get("when", "on_success")
    if when not in WHEN_VALUES:
        counted(f"{location} when should be one of: {', '.join(WHEN_VALUES)}")
    access = value.get("access")
    if access is not None and access not in ACCESS_VALUES:
        counted(f"{location} access should be one of: {', '.join(ACCESS_VALUES)}")
    expire_in = value.get("expire_in")
    if expire_in is not None and not _is_expiry(expire_in):
        counted(f"{location} expire_in should be a duration")
    reports = _reports(value.get("reports"), f"{location}:reports", counted)
    if value.get("expose_as") is not None and not paths:
        counted(f"{location} paths can't be blank")
    if counted.count:
        return None
    entries: list[dict[str, Any]] = []
    expiry = None if expire_in is None else str(expire_in)
    if paths or untracked:
        entries.append(
            {
                "name": name or "artifacts",
                "untracked": bool(untracked),
                "paths": paths or [],
                "exclude": exclude or [],
                "when": when,
                "artifact_type": "archive",
                "artifact_format": "zip",
                "expire_in": expiry,
            }
        )
    for report_type, report_paths in (reports or {}).items():
        entries.append(
            {
                "name": report_type,
                "untracked": False,
                "paths": report_paths,
                "exclude": [],
                "when": "always",
                "artifact_type": report_type,
                "artifact_format": "raw" if report_type in RAW_REPORTS else "gzip",
                "expire_in": expiry,
            }
        )
    return entries


def _is_expiry(value: Any) -> bool:
    if isinstance(value, str) and value.strip().lower() == "never":
        return True
    return isinstance(value, str | int) and not isinstance(value, bool) and (
        duration.parse_seconds(value) is not None
    )


def _optional(value: dict[str, Any], key: str, kind: type, message: str, report: Report) -> Any:
    item = value.get(key)
    if item is not None and not isinstance(item, kind):
        report(message)
        return None
    return item


def _strings(value: dict[str, Any], key: str, location: str, report: Report) -> list[str] | None:
    item = value.get(key)
    if item is None:
        return None
    if not is_string_list(item):
        report(f"{location} {key} should be an array of strings")
        return None
    return list(item)


def _reports(value: Any, location: str, report: Report) -> dict[str, list[str]] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        report(f"{location} config should be a hash")
        return None
    if unknown := values.unknown_keys(value, REPORT_TYPES):
        report(f"{location} {unknown}")
        return None
    reports: dict[str, list[str]] = {}
    for key, paths in value.items():
        if key == "coverage_report":
            parsed = _coverage_report(paths, f"{location}:coverage_report", report)
            if parsed is not None:
                reports[parsed[0]] = parsed[1]
        elif isinstance(paths, str):
            reports[key] = [paths]
        elif is_string_list(paths):
            reports[key] = list(paths)
        else:
            report(f"{location} {key} should be an array of strings or a string")
    return reports


def _coverage_report(value: Any, location: str, report: Report) -> tuple[str, list[str]] | None:
    """``coverage_report: {coverage_format: cobertura|jacoco, path}`` -> that format's report."""
    if not isinstance(value, dict) or set(value) != {"coverage_format", "path"}:
        report(f"{location} config should be a hash with coverage_format and path")
        return None
    if value["coverage_format"] not in ("cobertura", "jacoco") or not isinstance(value["path"], str):
        report(f"{location} coverage_format should be one of: cobertura, jacoco")
        return None
    return value["coverage_format"], [value["path"]]


def cache(value: Any, location: str, report: Report) -> list[dict[str, Any]] | None:
    """``cache:``: one hash or a list of at most 4 -> payload entries."""
    items = value if isinstance(value, list) else [value]
    if len(items) > MAX_CACHES:
        report(f"{location} config no more than {MAX_CACHES} caches can be created")
        return None
    if isinstance(value, list) and flatten.is_nested(value):  # counted before, as GitLab does
        items = flatten.flatten(value) or []
    parsed = [_cache(item, location, report) for item in items]
    if any(entry is None for entry in parsed):
        return None
    return [entry for entry in parsed if entry is not None]


def _cache(value: Any, location: str, report: Report) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        report(f"{location} config should be a hash")
        return None
    counted = CountingReport(report)
    if unknown := values.unknown_keys(value, CACHE_KEYS):
        counted(f"{location} {unknown}")
    key = _cache_key(value.get("key", "default"), f"{location}:key", counted)
    untracked = _optional(value, "untracked", bool, f"{location}:untracked config should be a boolean value", counted)
    _optional(value, "unprotect", bool, f"{location}:unprotect config should be a boolean value", counted)
    paths = value.get("paths")
    if paths is not None and not is_string_list(paths):
        counted(f"{location}:paths config should be an array of strings")
    policy = value.get("policy") or "pull-push"
    if not isinstance(policy, str) or not (policy in CACHE_POLICIES or policy.startswith("$")):
        counted(f"{location} policy should be a variable or one of: pull-push, push, pull")
    when = value.get("when", "on_success")
    if when not in WHEN_VALUES:
        counted(f"{location} when should be one of: {', '.join(WHEN_VALUES)}")
    fallback = value.get("fallback_keys") or []
    if not is_string_list(fallback):
        counted(f"{location}:fallback_keys config should be an array of strings")
    elif len(fallback) > MAX_FALLBACK_KEYS:
        counted(f"{location} fallback_keys has to many entries (maximum {MAX_FALLBACK_KEYS})")
    if counted.count:
        return None
    return {
        "key": key,
        "untracked": bool(untracked),
        "policy": policy,
        "paths": list(paths or []),
        "when": when,
        "fallback_keys": list(fallback),
    }


def _cache_key(value: Any, location: str, report: Report) -> str | dict[str, Any] | None:
    """A string key, or ``{files | files_commits, prefix}`` kept as a hash: ``pipeline.build``
    turns it into GitLab's key (``cache_key``) with the repository at the pipeline's commit."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        text = str(value)
        if "/" in text or "%2f" in text.lower():
            report(f'{location} config cannot contain the "/" character')
            return None
        if text.strip(".") == "":
            report(f'{location} config cannot be "." or ".."')
            return None
        return text
    if not isinstance(value, dict):
        report(f"{location} config should be a hash, a string or a symbol")
        return None
    unknown = [str(key) for key in value if key not in ("files", "files_commits", "prefix")]
    if unknown:
        report(f"{location} config contains unknown keys: {', '.join(unknown)}")
        return None
    kind = "files_commits" if "files_commits" in value and "files" not in value else "files"
    files = value.get(kind)
    if not is_string_list(files) or not files:
        report(f"{location}:{kind} config should be an array of strings")
        return None
    if len(files) > MAX_KEY_FILES:
        report(f"{location}:{kind} config has too many entries (maximum {MAX_KEY_FILES})")
        return None
    prefix = value.get("prefix")
    if prefix is not None and not isinstance(prefix, str):
        report(f"{location}:prefix config should be a string")
        return None
    return {kind: list(files), "prefix": prefix}


def cache_key(key: Any, hashes: Any) -> str:
    """GitLab's key of ``key: {files | files_commits, prefix}`` (``Seed::Build::Cache``): the
    prefix and the SHA-1 of the sorted, distinct blob ids of the files (or ids of the last
    commits that changed them) joined by ``-``; ``default`` when none of the files exists.
    ``hashes(kind, paths)`` gives those ids at the pipeline's commit (None for a missing file);
    without it (no repository), the file names stand in."""
    if not isinstance(key, dict):
        return str(key)
    kind = "files_commits" if "files_commits" in key else "files"
    paths = list(dict.fromkeys(path for path in key[kind] if path))
    found = hashes(kind, paths) if hashes is not None else paths
    ids = sorted({item for item in found if item})
    digest = hashlib.sha1("-".join(ids).encode()).hexdigest() if ids else "default"
    return "-".join(part for part in (key.get("prefix") or "", digest) if part)
