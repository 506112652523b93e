"""The runner's ``config.toml``, in the spirit of gitlab-runner's.

::

    concurrent = 4              # jobs at once over all entries
    check_interval = 3          # seconds between job requests of one entry
    listen_address = "127.0.0.1:9252"   # Prometheus /metrics; empty: off

    [[runners]]
    name = "build-box"
    url = "https://gitlab.example.com"
    id = 42
    token = "glrt-..."
    executor = "docker"         # or "shell"
    builds_dir = "/var/lib/conveyor/builds"
    tags = ["docker", "linux"]
    limit = 2                   # jobs at once for this entry; 0 = no own limit
    output_limit = 4096         # KiB
    request_timeout = 120       # seconds per request to the coordinator
    pool_idle_timeout = 90      # seconds an idle connection to the coordinator is reused
    [runners.keepalive]         # TCP keepalive of every socket to the coordinator/Docker host
    idle = 15
    interval = 15
    count = 4
    user_timeout = 75           # TCP_USER_TIMEOUT; default idle + interval * count, 0 = kernel's
    enabled = true              # false only to diagnose
    [runners.docker]
    host = "unix:///run/podman/podman.sock"
    image = "alpine:3"
    pull_policy = ["if-not-present"]
    wait_for_services_timeout = 30   # seconds; negative: do not wait
    [runners.cache]             # the cache shared by runners (gitlab-runner's keys)
    Type = "s3"
    Path = "ci-cache"
    Shared = true
    [runners.cache.s3]
    ServerAddress = "s3.eu-west-1.amazonaws.com"
    AccessKey = "..."
    SecretKey = "..."
    BucketName = "runners-cache"
    BucketLocation = "eu-west-1"
    Insecure = false

The system ID is kept in ``.runner_system_id`` next to the file, as gitlab-runner does. Reading
uses ``tomllib``; writing is a small emitter for the value types above. Settings modules are the
only ones reading the environment, and this one reads none: the path comes from the caller.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from conveyor.protocol.keepalive import KeepaliveConfig
from conveyor.runner.errors import SettingsError
from conveyor.runner.settings import DockerSettings, RunnerSettings, S3CacheSettings, load_system_id

_SCALARS = ("name", "url", "token", "executor", "limit", "timestamps", "cancel_gracefully")


@dataclass(frozen=True)
class RunnerEntry:
    """One ``[[runners]]`` table as written to the file."""

    url: str
    token: str
    name: str = "conveyor-runner"
    id: int = 0
    token_expires_at: str = ""
    executor: str = "shell"
    builds_dir: str = ""
    cache_dir: str = ""
    tags: list[str] = field(default_factory=list)
    limit: int = 0
    output_limit: int = 4096  # KiB, like gitlab-runner
    timestamps: bool = False
    cancel_gracefully: bool = True
    force_send_interval: float | None = None  # seconds without a PATCH before a keep-alive PUT (30)
    request_timeout: float | None = None  # seconds a request to the coordinator may take (120)
    pool_idle_timeout: float | None = None  # seconds an idle connection to the coordinator is reused (90)
    keepalive: dict[str, int | bool] = field(default_factory=dict)  # idle, interval, count, enabled
    docker: dict[str, Any] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)  # gitlab-runner's [runners.cache] and [runners.cache.s3]


@dataclass(frozen=True)
class RunnerConfig:
    """The whole file: global settings and the runner entries."""

    concurrent: int = 1
    check_interval: float = 3.0
    listen_address: str = ""
    runners: list[RunnerEntry] = field(default_factory=list)

    def with_entry(self, entry: RunnerEntry) -> RunnerConfig:
        """A copy with ``entry`` added, replacing an entry with the same url and token."""
        kept = [r for r in self.runners if (r.url, r.token) != (entry.url, entry.token)]
        return replace(self, runners=[*kept, entry])

    def settings(self, path: Path) -> list[RunnerSettings]:
        """One frozen ``RunnerSettings`` per entry; relative directories are relative to the file."""
        base = path.parent.absolute()
        system_id = load_system_id(base)
        result = []
        for index, entry in enumerate(self.runners):
            try:
                result.append(_settings(entry, base, system_id, self.check_interval))
            except (SettingsError, ValueError, TypeError) as exc:
                raise SettingsError(f"{path}: [[runners]] #{index + 1} ({entry.name}): {exc}") from exc
        return result


def load(path: Path) -> RunnerConfig:
    """Parse ``path``.

    Raises:
        SettingsError: the file is missing, not TOML, or has wrong types (with the location).
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SettingsError(f"{path} does not exist: run `conveyor runner register` first") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: {exc}") from exc
    known = {f.name for f in fields(RunnerEntry)}
    entries = []
    for index, table in enumerate(raw.get("runners", [])):
        unknown = sorted(set(table) - known)
        if unknown:
            raise SettingsError(f"{path}: [[runners]] #{index + 1}: unknown keys {unknown}")
        try:
            entries.append(RunnerEntry(**table))
        except TypeError as exc:
            raise SettingsError(f"{path}: [[runners]] #{index + 1}: {exc}") from exc
    concurrent = raw.get("concurrent", 1)
    if not isinstance(concurrent, int) or concurrent < 1:
        raise SettingsError(f"{path}: concurrent must be an integer >= 1, got {concurrent!r}")
    return RunnerConfig(
        concurrent=concurrent,
        check_interval=float(raw.get("check_interval", 3.0)),
        listen_address=str(raw.get("listen_address", "")),
        runners=entries,
    )


def save(config: RunnerConfig, path: Path) -> None:
    """Write ``config`` atomically with mode 0600 (it holds runner tokens)."""
    lines = [
        f"concurrent = {config.concurrent}",
        f"check_interval = {_value(config.check_interval)}",
        f"listen_address = {_value(config.listen_address)}",
    ]
    for entry in config.runners:
        lines += ["", "[[runners]]"]
        nested = {}
        for f in fields(RunnerEntry):
            value = getattr(entry, f.name)
            if isinstance(value, dict):
                nested[f.name] = value
            elif value not in ("", None):
                lines.append(f"{f.name} = {_value(value)}")
        for name, table in nested.items():
            if table:
                lines.append(f"[runners.{name}]")
                lines += [f"{key} = {_value(value)}" for key, value in table.items() if not isinstance(value, dict)]
                for sub, inner in table.items():  # [runners.cache.s3]
                    if isinstance(inner, dict):
                        lines.append(f"[runners.{name}.{sub}]")
                        lines += [f"{key} = {_value(value)}" for key, value in inner.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def _value(value: Any) -> str:
    """A TOML literal for str, bool, int, float and lists of those."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise SettingsError(f"cannot write {value!r} to TOML")


def _settings(entry: RunnerEntry, base: Path, system_id: str, check_interval: float) -> RunnerSettings:
    values: dict[str, Any] = {name: getattr(entry, name) for name in _SCALARS}
    values["check_interval"] = check_interval
    values["builds_dir"] = base / (entry.builds_dir or "builds")
    if entry.cache_dir:
        values["cache_dir"] = base / entry.cache_dir
    values["tags"] = tuple(entry.tags)
    values["output_limit"] = int(entry.output_limit) * 1024
    values["system_id"] = system_id
    for name in ("force_send_interval", "request_timeout", "pool_idle_timeout"):
        if getattr(entry, name):
            values[name] = float(getattr(entry, name))
    if entry.keepalive:
        values["keepalive"] = KeepaliveConfig(**entry.keepalive)
    if entry.executor == "docker" or entry.docker:
        docker = dict(entry.docker)
        if "pull_policy" in docker:
            policy = docker["pull_policy"]
            docker["pull_policy"] = (policy,) if isinstance(policy, str) else tuple(policy)
        values["docker"] = DockerSettings(**docker)
    if entry.cache:
        values["cache"] = _cache(entry.cache)
    return RunnerSettings(**values)


_S3_KEYS = {"ServerAddress": "server_address", "AccessKey": "access_key", "SecretKey": "secret_key",
            "BucketName": "bucket_name", "BucketLocation": "bucket_location", "Insecure": "insecure"}  # fmt: skip


def _cache(table: dict[str, Any]) -> S3CacheSettings | None:
    """``[runners.cache]`` in gitlab-runner's spelling; only ``Type = "s3"`` is supported."""
    kind = str(table.get("Type") or "")
    if not kind:
        return None
    if kind != "s3":
        raise SettingsError(f"[runners.cache] Type {kind!r} is not supported (only \"s3\")")
    unknown = sorted(set(table) - {"Type", "Path", "Shared", "s3"})
    s3 = table.get("s3") or {}
    unknown += sorted(f"s3.{key}" for key in set(s3) - set(_S3_KEYS))
    if unknown:
        raise SettingsError(f"[runners.cache]: unknown keys {unknown}")
    return S3CacheSettings(path=str(table.get("Path") or ""), shared=bool(table.get("Shared", False)),
                           **{_S3_KEYS[key]: value for key, value in s3.items()})  # fmt: skip
