"""bench/traces part (a): ``PATCH /api/v4/jobs/:id/trace`` throughput against the same server's
accept-and-discard route (``api/bench.py``: same process, same HTTP stack, nothing stored).

``jobs`` running jobs each stream PATCHes of one body size back to back (a runner sends its next
PATCH when the previous one is answered) for ``seconds``; a phase's figure is PATCHes (and MiB)
per second over all of them, for the Redis store (hot chunks, sealed into segment files beside
the local object store, with fdatasync: the default), the Redis store sealing into PostgreSQL rows
(reference), and the PostgreSQL store (reference), each against the discard route measured in
the same run. Goal: >= 60%, for the default.

The client is ``raw_patch`` (hand-made HTTP/1.1, ~0.1-0.4 ms of CPU per PATCH), so the discard
route runs at the server's ceiling, not the client's. The default store is measured with httpx
too (as the Python runner sends; 3-5 ms per PATCH): that baseline is set by the client near one
core, and its ratio is shown for reference only.

Method: one phase alone swings by +-20% from run to run on a small shared machine (the bench's
client is one asyncio process), so each store and body size runs ``rounds`` rounds of one discard
phase then one stored phase, interleaved so a slow drift of the machine hits both; a phase reports
the median PATCH/s and MiB/s over its rounds with the per-round values, and the ratio is
median(stored) / median(discard). For the default store's 1 MiB bodies a third phase per round,
the "durable floor", PATCHes the discard route's twin ``/bench/durable/:id/trace``: it writes each body into a
segment file as the store writes the whole chunks a PATCH carries (O_DIRECT, fdatasync, CRC-32
per 128 KiB) and does nothing else, so its ratio bounds what a store that puts those bytes on
disk before answering can reach on this machine. (4 KiB PATCHes are acknowledged from Redis with
AOF and reach disk a chunk at a time, so no such floor applies to them.) Summed over a phase's
rounds: CPU milliseconds per PATCH by
process (the bench's client, the server, PostgreSQL with all backends, Redis), and the whole
machine's CPU split from ``/proc/stat`` (percent of all cores; ``busy`` = 100 - idle), to tell a
saturated machine from a slow server.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx

from bench import dispatch_setup as setup
from bench import raw_patch, support
from tests.plugins.runner_clients import RunnerClient

SIZES = {"4 KiB": 4 * 1024, "1 MiB": 1024 * 1024}
GOAL = 0.6
FLOOR_FROM = 128 * 1024  # bodies this large carry whole chunks, written to disk before the answer


async def _jobs(cluster: support.Cluster, svc: support.Services, database: str, count: int) -> list[Any]:
    async with cluster.admin() as admin:
        project = await setup.create_project(admin, setup.make_source(svc.workdir), "traces")
        token = (await setup.create_runner_tokens(admin, 1))[0]
    await setup.insert_pending(database, project["id"], count, tags=[], prefix="patch-")
    runner = RunnerClient(token, "bench-traces", cluster.urls, timeout=60)
    jobs = []
    while len(jobs) < count:
        job = await runner.request_job(cluster.urls[0])
        if job is not None:
            await runner.acknowledge(cluster.urls[0], job)
            jobs.append(job)
    await runner.aclose()
    return jobs


async def _measured(cluster: support.Cluster, svc: support.Services, machine: support.MachineCpu, client: str,
                    *args: Any, **kwargs: Any) -> dict[str, Any]:
    """One round's ``_stream`` with the CPU seconds each process spent on it (``cpu_s``); the
    machine's CPU ticks add up in ``machine``."""
    cpu = support.CpuMeter([s.proc.pid for s in cluster.servers], svc.postgres.proc.pid, svc.redis.proc.pid)
    machine.start()
    result = await CLIENTS[client](*args, **kwargs)
    machine.stop()
    result["cpu_s"] = cpu.stop()
    return result


def _phase(rounds: list[dict[str, Any]], machine: support.MachineCpu) -> dict[str, Any]:
    """A phase over its rounds: median PATCH/s and MiB/s, the per-round values, and over all rounds
    the errors, CPU ms per PATCH by process and the machine's CPU split."""
    patches = sum(r["patches"] for r in rounds)
    cpu_s: dict[str, float] = {}
    for r in rounds:
        for name, value in r["cpu_s"].items():
            cpu_s[name] = cpu_s.get(name, 0.0) + value
    return {
        "patches_per_s": round(statistics.median(r["patches_per_s"] for r in rounds), 1),
        "mib_per_s": round(statistics.median(r["mib_per_s"] for r in rounds), 1),
        "rounds_patches_per_s": [r["patches_per_s"] for r in rounds],
        "rounds_mib_per_s": [r["mib_per_s"] for r in rounds],
        "patches": patches,
        "seconds": round(sum(r["seconds"] for r in rounds), 2),
        "errors": sum(r["errors"] for r in rounds),
        "first_errors": [e for r in rounds for e in r["first_errors"]][:3],
        "cpu_ms_per_patch": {name.removesuffix("_cpu_s"): round(value * 1000 / max(1, patches), 2) for name, value in cpu_s.items()},
        "machine_cpu_pct": machine.split(),
    }


async def _stream(url: str, jobs: list[Any], body: bytes, seconds: float, *, discard: bool, offsets: dict[int, int]) -> dict[str, Any]:
    """Each job PATCHes ``body`` back to back for ``seconds`` with httpx (as the Python runner does)."""
    patches, errors = 0, 0
    first_errors: list[str] = []
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=len(jobs), max_keepalive_connections=len(jobs))
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:

        async def one(job: Any) -> None:
            nonlocal patches, errors
            offset = offsets.get(job.id, 0) if not discard else 0
            path = f"/bench/discard/{job.id}/trace" if discard else f"/api/v4/jobs/{job.id}/trace"
            while time.monotonic() < deadline:
                headers = {"JOB-TOKEN": job.token, "Content-Range": f"{offset}-{offset + len(body) - 1}"}
                response = await http.patch(path, content=body, headers=headers)
                if response.status_code != 202:
                    errors += 1
                    first_errors.append(f"{response.status_code} {response.text[:120]}")
                    offset = int(response.headers.get("Range", "0-0").split("-")[1])
                    continue
                offset += len(body)
                patches += 1
            if not discard:
                offsets[job.id] = offset

        started = time.monotonic()
        await asyncio.gather(*(one(job) for job in jobs))
        elapsed = time.monotonic() - started
    return raw_patch.round_result(patches, errors, first_errors, elapsed, len(body))


CLIENTS = {"raw": raw_patch.stream, "httpx": _stream}
DEFAULT = {"trace_store": "redis"}  # chunks sealed into segment files beside the local object store
STORES = {  # label -> (server settings, client)
    "redis": (DEFAULT, "raw"),  # the default store, the goal's figure
    "redis, httpx client": (DEFAULT, "httpx"),  # the same with httpx: a client-bound baseline
    "redis, rows": ({"trace_store": "redis", "trace_chunk_store": "database"}, "raw"),
    "postgres": ({"trace_store": "postgres"}, "raw"),
}


async def _store(svc: support.Services, store: str, jobs_count: int, seconds: float, rounds: int) -> dict[str, Any]:
    name = store.replace(", ", "_").replace(" ", "_")
    database = svc.fresh_database(f"bench_traces_patch_{name}")
    svc.flush_redis()
    server_settings, client = STORES[store]
    settings = {**server_settings, "bench_routes": "true", "trace_size_limit": 1 << 40, "savepoint_policy": "raise"}
    results: dict[str, Any] = {}
    with support.Cluster(svc, database, 1, f"traces-patch-{name}", **settings) as cluster:
        jobs = await _jobs(cluster, svc, database, jobs_count)
        offsets: dict[int, int] = {}
        for label, size in SIZES.items():
            body = (b"0123456789abcdef" * (size // 16 + 1))[: size - 1] + b"\n"
            support.log(f"traces patch: {store} store, {label} bodies, {jobs_count} jobs, {rounds} x {seconds} s")
            runs: dict[str, list[dict[str, Any]]] = {"discard": [], "conveyor": []}
            if store == "redis" and size >= FLOOR_FROM:
                runs["floor"] = []  # discard + the durable write alone (api/bench.py)
            machines = {phase: support.MachineCpu() for phase in runs}
            for done in range(1, rounds + 1):  # interleaved: a drift of the machine hits both phases
                for phase in runs:
                    extra = {"durable": True} if phase == "floor" else {}
                    runs[phase].append(await _measured(cluster, svc, machines[phase], client, cluster.urls[0], jobs, body,
                                                       seconds, discard=phase != "conveyor", offsets=offsets, **extra))
                support.log(f"  round {done}/{rounds}: discard {runs['discard'][-1]['patches_per_s']} PATCH/s, "
                            f"stored {runs['conveyor'][-1]['patches_per_s']} PATCH/s"
                            + (f", durable floor {runs['floor'][-1]['patches_per_s']} PATCH/s" if "floor" in runs else ""))
            discard, stored = (_phase(runs[phase], machines[phase]) for phase in ("discard", "conveyor"))
            results[label] = {
                "conveyor": stored,
                "discard": discard,
                "ratio": support.ratio(stored["patches_per_s"], discard["patches_per_s"]),
            }
            if "floor" in runs:
                floor = _phase(runs["floor"], machines["floor"])
                results[label]["durable_floor"] = floor
                results[label]["durable_floor_ratio"] = support.ratio(floor["patches_per_s"], discard["patches_per_s"])
    results["savepoints"] = cluster.savepoints
    return results


async def measure(svc: support.Services, quick: bool) -> dict[str, Any]:
    jobs, seconds, rounds = (8, 3.0, 1) if quick else (32, 6.0, 3)
    figures = {store: await _store(svc, store, jobs, seconds, rounds) for store in STORES}
    rows, goals = [], []
    for store, by_size in figures.items():
        for label in SIZES:
            entry = by_size[label]
            cpu = entry["conveyor"]["cpu_ms_per_patch"]
            rows.append([store, label, entry["conveyor"]["patches_per_s"], entry["conveyor"]["mib_per_s"],
                         entry["discard"]["patches_per_s"], entry["ratio"], entry["conveyor"]["errors"],
                         f"{cpu['bench_client']}/{cpu['servers']}/{cpu['postgresql']}/{cpu['redis']}",
                         entry["discard"]["cpu_ms_per_patch"]["servers"], entry["conveyor"]["machine_cpu_pct"]["busy"]])
            if "durable_floor" in entry:
                floor = entry["durable_floor"]
                cpu = floor["cpu_ms_per_patch"]
                rows.append([f"{store}: durable write only (floor)", label, floor["patches_per_s"], floor["mib_per_s"],
                             entry["discard"]["patches_per_s"], entry["durable_floor_ratio"], floor["errors"],
                             f"{cpu['bench_client']}/{cpu['servers']}/{cpu['postgresql']}/{cpu['redis']}",
                             entry["discard"]["cpu_ms_per_patch"]["servers"], floor["machine_cpu_pct"]["busy"]])
            if store == "redis":  # the default store; postgres is reported for reference
                goals.append({"goal": f"PATCH throughput, {label} bodies, vs accept-and-discard", "target": ">= 0.6x",
                              "measured": entry["ratio"], "passed": entry["ratio"] is not None and entry["ratio"] >= GOAL})
    return {
        "figures": {"jobs": jobs, "rounds": rounds, "seconds_per_phase": seconds, **figures},
        "goals": goals,
        "table": {"header": ["store", "body", "PATCH/s", "MiB/s", "discard PATCH/s", "ratio", "errors",
                             "CPU ms/PATCH client/server/pg/redis", "discard server ms", "machine busy %"], "rows": rows},
    }
