"""RunnerSettings: the one frozen configuration object of a runner process.

Built once in ``main`` (usually by :meth:`RunnerSettings.from_env`) and passed down through
constructors. This is the only runner module that reads ``os.environ``.
"""

from __future__ import annotations

import os
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.protocol.keepalive import KeepaliveConfig
from conveyor.runner.errors import SettingsError

ENV_PREFIX = "CONVEYOR_RUNNER_"
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
PULL_POLICIES = ("always", "if-not-present", "never")
SYSTEM_ID_FILE = ".runner_system_id"
MAX_UPDATE_INTERVAL = 15 * 60.0  # runner MaxUpdateInterval
_SYSTEM_ID = re.compile(r"^[sr]_[0-9a-zA-Z]{12}$")

# CONVEYOR_RUNNER_<NAME> -> (field, parser)
_ENV_FIELDS: dict[str, tuple[str, type]] = {
    "URL": ("url", str),
    "TOKEN": ("token", str),
    "BUILDS_DIR": ("builds_dir", Path),
    "NAME": ("name", str),
    "SYSTEM_ID": ("system_id", str),
    "EXECUTOR": ("executor", str),
    "CHECK_INTERVAL": ("check_interval", float),
    "UPDATE_INTERVAL": ("update_interval", float),
    "FORCE_SEND_INTERVAL": ("force_send_interval", float),
    "OUTPUT_LIMIT": ("output_limit", int),
    "REQUEST_TIMEOUT": ("request_timeout", float),
    "POOL_IDLE_TIMEOUT": ("pool_idle_timeout", float),
}
_KEEPALIVE_FIELDS = {"KEEPALIVE_IDLE": "idle", "KEEPALIVE_INTERVAL": "interval", "KEEPALIVE_COUNT": "count",
                     "KEEPALIVE_USER_TIMEOUT": "user_timeout"}
_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


@dataclass(frozen=True)
class DockerSettings:
    """``[runners.docker]``: where the Docker Engine API is and how job containers are made.

    ``host`` is ``unix:///path`` or ``tcp://host:port`` (TLS from ``tls_cert_path``'s
    ``ca.pem``/``cert.pem``/``key.pem`` when ``tls_verify``); empty means ``DOCKER_HOST`` or the
    default socket. ``pull_policy`` lists the allowed policies, the first is the default.
    """

    host: str = ""
    image: str = ""
    pull_policy: tuple[str, ...] = ("always",)
    tls_verify: bool = False
    tls_cert_path: str = ""
    privileged: bool = False
    stop_grace: float = 10.0
    wait_for_services_timeout: float = 30.0  # seconds; negative: do not wait (gitlab-runner's)

    def __post_init__(self) -> None:
        host = self.host or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
        if not host.startswith(("unix://", "tcp://", "http://", "https://")):
            raise SettingsError(f"docker host {host!r} must start with unix:// or tcp://")
        object.__setattr__(self, "host", host)
        policies = tuple(self.pull_policy) or ("always",)
        unknown = [p for p in policies if p not in PULL_POLICIES]
        if unknown:
            raise SettingsError(f"unknown pull_policy {unknown}; use {', '.join(PULL_POLICIES)}")
        object.__setattr__(self, "pull_policy", policies)


@dataclass(frozen=True)
class S3CacheSettings:
    """``[runners.cache]`` with ``Type = "s3"`` (``Path``, ``Shared``) and its ``[runners.cache.s3]``
    (``ServerAddress``, ``AccessKey``, ``SecretKey``, ``BucketName``, ``BucketLocation``,
    ``Insecure``): the cache shared by runners (``files/s3cache.py``)."""

    server_address: str = ""
    access_key: str = ""
    secret_key: str = ""
    bucket_name: str = ""
    bucket_location: str = "us-east-1"
    insecure: bool = False
    path: str = ""
    shared: bool = False

    def __post_init__(self) -> None:
        for name in ("server_address", "access_key", "secret_key", "bucket_name"):
            if not getattr(self, name):
                raise SettingsError(f"[runners.cache.s3] needs {name}")


@dataclass(frozen=True)
class RunnerSettings:
    """Configuration of one runner process.

    ``system_id`` is resolved on construction when left empty: read from
    ``builds_dir/.runner_system_id``, or generated (``r_`` + 12 alphanumerics) and persisted there.
    """

    url: str
    token: str
    builds_dir: Path
    name: str = "conveyor-runner"
    system_id: str = ""
    executor: str = "shell"
    check_interval: float = 3.0
    update_interval: float = 3.0
    force_send_interval: float = 30.0
    output_limit: int = 4 * 1024 * 1024
    keepalive: KeepaliveConfig = field(default_factory=KeepaliveConfig)
    request_timeout: float = 120.0
    pool_idle_timeout: float = 90.0  # an idle pooled connection to the coordinator is closed after it (Go's IdleConnTimeout)
    final_update_retries: int = 10
    final_update_backoff: float = 1.0
    unhealthy_requests_limit: int = 3
    unhealthy_interval: float = 60 * 60.0
    keep_traces: bool = False
    limit: int = 0  # concurrent jobs of this entry; 0 = only the global ``concurrent`` applies
    tags: tuple[str, ...] = ()
    cache_dir: Path | None = None  # default: <builds_dir>/.conveyor-cache
    timestamps: bool = False  # per-line timestamps (FF_TIMESTAMPS), also per job
    cancel_gracefully: bool = True  # advertise it: the coordinator then cancels via ``canceling``
    docker: DockerSettings | None = None
    cache: S3CacheSettings | None = None  # the shared cache; None: only the local one

    def __post_init__(self) -> None:
        if not self.url:
            raise SettingsError(f"{ENV_PREFIX}URL is not set: the coordinator URL is required")
        if not self.url.startswith(("http://", "https://")):
            raise SettingsError(f"{ENV_PREFIX}URL must start with http:// or https://, got {self.url!r}")
        if not self.token:
            raise SettingsError(f"{ENV_PREFIX}TOKEN is not set: the runner authentication token is required")
        for name in ("check_interval", "update_interval", "force_send_interval", "request_timeout", "pool_idle_timeout"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be > 0")
        if self.final_update_retries < 1 or self.final_update_backoff < 0:
            raise SettingsError("final_update_retries must be >= 1 and final_update_backoff >= 0")
        if self.output_limit < 1:
            raise SettingsError("output_limit must be >= 1")
        if self.limit < 0:
            raise SettingsError("limit must be >= 0")
        builds_dir = Path(self.builds_dir).expanduser().absolute()
        object.__setattr__(self, "builds_dir", builds_dir)
        cache_dir = Path(self.cache_dir).expanduser().absolute() if self.cache_dir else builds_dir / ".conveyor-cache"
        object.__setattr__(self, "cache_dir", cache_dir)
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "update_interval", min(self.update_interval, MAX_UPDATE_INTERVAL))
        if self.system_id:
            if not _SYSTEM_ID.match(self.system_id):
                raise SettingsError(f"system_id {self.system_id!r} must match {_SYSTEM_ID.pattern}")
        else:
            object.__setattr__(self, "system_id", load_system_id(builds_dir))

    @property
    def trace_dir(self) -> Path:
        """Where trace spools live while a job runs."""
        return self.builds_dir / ".conveyor-traces"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> RunnerSettings:
        """Settings from ``CONVEYOR_RUNNER_*`` variables; keyword overrides win.

        Raises:
            SettingsError: a required value is missing or a value does not parse.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {"url": "", "token": "", "builds_dir": Path.cwd() / "builds"}
        for suffix, (name, parse) in _ENV_FIELDS.items():
            raw = env.get(ENV_PREFIX + suffix)
            if raw not in (None, ""):
                values[name] = _parse(ENV_PREFIX + suffix, raw, parse)
        keepalive = {
            attr: _parse(ENV_PREFIX + suffix, env[ENV_PREFIX + suffix], int)
            for suffix, attr in _KEEPALIVE_FIELDS.items()
            if env.get(ENV_PREFIX + suffix)
        }
        enabled = env.get(ENV_PREFIX + "KEEPALIVE_ENABLED", "").strip().lower()
        if enabled:
            if enabled not in _BOOLEANS:
                raise SettingsError(f"{ENV_PREFIX}KEEPALIVE_ENABLED={enabled!r} must be true or false")
            keepalive["enabled"] = _BOOLEANS[enabled]
        if keepalive:
            try:
                values["keepalive"] = KeepaliveConfig(**keepalive)
            except ValueError as exc:
                raise SettingsError(str(exc)) from exc
        values.update(overrides)
        return cls(**values)


def job_environment() -> dict[str, str]:
    """The environment jobs inherit: this process's, minus ``CONVEYOR_*`` (the runner token)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}


def load_system_id(builds_dir: Path) -> str:
    """Read the persisted system ID, or generate and persist a new ``r_`` one."""
    path = builds_dir / SYSTEM_ID_FILE
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    if _SYSTEM_ID.match(existing):
        return existing
    alphabet = string.ascii_letters + string.digits
    system_id = "r_" + "".join(secrets.choice(alphabet) for _ in range(12))
    try:
        builds_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(system_id + "\n", encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"cannot persist the system ID in {path}: {exc}") from exc
    return system_id


def _parse(name: str, raw: str, parse: type) -> Any:
    try:
        return parse(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not a valid {parse.__name__}") from exc
