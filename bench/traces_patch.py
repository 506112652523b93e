"""bench/traces part (a): ``PATCH /api/v4/jobs/:id/trace`` throughput against the same server's
accept-and-discard route (``api/bench.py``: same process, same HTTP stack, nothing stored).

``jobs`` running jobs each stream PATCHes of one body size back to back (a runner sends its next
PATCH when the previous one is answered) for ``seconds``; the figure is PATCHes (and MiB) per
second over all of them, for the Redis store (hot chunks, sealed into PostgreSQL: the default
with a local object store), the Redis store sealing into the object store (a local directory
here; reference), and the PostgreSQL store (reference), each against the discard route measured
in the same run. Goal: >= 60%, for the default. Each phase also reports CPU milliseconds per PATCH
by process: the bench's client, the server, PostgreSQL (all backends), Redis.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from bench import dispatch_setup as setup
from bench import support
from tests.plugins.runner_clients import RunnerClient

SIZES = {"4 KiB": 4 * 1024, "1 MiB": 1024 * 1024}
GOAL = 0.6


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


async def _measured(cluster: support.Cluster, svc: support.Services, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """``_stream`` with the CPU each process spent on it, in ms per PATCH."""
    cpu = support.CpuMeter([s.proc.pid for s in cluster.servers], svc.postgres.proc.pid, svc.redis.proc.pid)
    result = await _stream(*args, **kwargs)
    used = cpu.stop()
    done = max(1, result["patches"])
    result["cpu_ms_per_patch"] = {name.removesuffix("_cpu_s"): round(value * 1000 / done, 2) for name, value in used.items()}
    return result


async def _stream(url: str, jobs: list[Any], body: bytes, seconds: float, *, discard: bool, offsets: dict[int, int]) -> dict[str, Any]:
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
    return {
        "patches": patches,
        "errors": errors,
        "first_errors": first_errors[:3],
        "seconds": round(elapsed, 2),
        "patches_per_s": round(patches / elapsed, 1),
        "mib_per_s": round(patches * len(body) / elapsed / 2**20, 1),
    }


STORES = {  # label -> server settings
    "redis": {"trace_store": "redis"},
    "redis, object chunks": {"trace_store": "redis", "trace_chunk_store": "object"},
    "postgres": {"trace_store": "postgres"},
}


async def _store(svc: support.Services, store: str, jobs_count: int, seconds: float) -> dict[str, Any]:
    name = store.replace(", ", "_").replace(" ", "_")
    database = svc.fresh_database(f"bench_traces_patch_{name}")
    svc.flush_redis()
    settings = {**STORES[store], "bench_routes": "true", "trace_size_limit": 1 << 40, "savepoint_policy": "raise"}
    results: dict[str, Any] = {}
    with support.Cluster(svc, database, 1, f"traces-patch-{name}", **settings) as cluster:
        jobs = await _jobs(cluster, svc, database, jobs_count)
        offsets: dict[int, int] = {}
        for label, size in SIZES.items():
            body = (b"0123456789abcdef" * (size // 16 + 1))[: size - 1] + b"\n"
            support.log(f"traces patch: {store} store, {label} bodies, {jobs_count} jobs, {seconds} s")
            discard = await _measured(cluster, svc, cluster.urls[0], jobs, body, seconds, discard=True, offsets=offsets)
            stored = await _measured(cluster, svc, cluster.urls[0], jobs, body, seconds, discard=False, offsets=offsets)
            results[label] = {
                "conveyor": stored,
                "discard": discard,
                "ratio": support.ratio(stored["patches_per_s"], discard["patches_per_s"]),
            }
    results["savepoints"] = cluster.savepoints
    return results


async def measure(svc: support.Services, quick: bool) -> dict[str, Any]:
    jobs, seconds = (8, 3.0) if quick else (32, 10.0)
    figures = {store: await _store(svc, store, jobs, seconds) for store in STORES}
    rows, goals = [], []
    for store, by_size in figures.items():
        for label in SIZES:
            entry = by_size[label]
            cpu = entry["conveyor"]["cpu_ms_per_patch"]
            rows.append([store, label, entry["conveyor"]["patches_per_s"], entry["conveyor"]["mib_per_s"],
                         entry["discard"]["patches_per_s"], entry["ratio"], entry["conveyor"]["errors"],
                         f"{cpu['bench_client']}/{cpu['servers']}/{cpu['postgresql']}/{cpu['redis']}",
                         entry["discard"]["cpu_ms_per_patch"]["servers"]])
            if store == "redis":  # the default store; postgres is reported for reference
                goals.append({"goal": f"PATCH throughput, {label} bodies, vs accept-and-discard", "target": ">= 0.6x",
                              "measured": entry["ratio"], "passed": entry["ratio"] is not None and entry["ratio"] >= GOAL})
    return {
        "figures": {"jobs": jobs, "seconds_per_phase": seconds, **figures},
        "goals": goals,
        "table": {"header": ["store", "body", "PATCH/s", "MiB/s", "discard PATCH/s", "ratio", "errors",
                             "CPU ms/PATCH client/server/pg/redis", "discard server ms"], "rows": rows},
    }
