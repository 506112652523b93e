"""Trace benchmark, part (b): live viewers. N jobs stream their logs while M SSE viewers watch.

Everything real and local: ``--servers`` ``conveyor server`` processes on one PostgreSQL and one
Redis (``support.Cluster``). One pipeline of N jobs is created and every job is claimed and
acknowledged over the runner API. Then:

1. **Viewers attach.** M live tails (``GET …/trace/stream``), spread evenly over the jobs and the
   servers, opened by ``--viewer-procs`` client processes (one event loop cannot take 1,000
   sockets and still timestamp fairly; each process's CPU time is recorded).
2. **Jobs stream.** Each job PATCHes ``--line-bytes`` bytes every ``--interval`` seconds (the
   runner's cadence while watched: 3 s), phases staggered, for ``--duration`` seconds, from
   ``--patch-procs`` client processes, alternating servers.
3. **Latency** of a byte = the moment a viewer receives the SSE event carrying it minus the moment
   the PATCH's 202 was in hand (CLOCK_MONOTONIC, one host, comparable across processes). A viewer
   may get the event before the 202 reaches the patcher; such samples count as 0.
4. **Server RSS**: peak VmRSS of each server process, sampled every 0.5 s.

Baselines, same run: (a) a bare Redis pub/sub round trip (publish -> a subscriber in another
process has it) at the same message rate, the floor for any push design; (b) polling: the same
jobs and PATCHes, ``M / 10`` pollers doing ``GET /trace`` with ``Range`` every second (GitLab's UI
polls every 4 s), latency = first poll that returns the byte minus the 202.

``await measure(svc, quick)`` is what ``bench/traces.py`` calls; ``python bench/traces_viewers.py
[--quick]`` runs it alone and prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import multiprocessing
import os
import queue
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from bench import support  # noqa: E402
from bench.traces_viewers_clients import (  # noqa: E402
    CHANNEL,
    _channel_proc,
    _patch_proc,
    _poller_proc,
    _subscriber_proc,
    _viewer_proc,
)
from tests.plugins.live import ROOT_TOKEN  # noqa: E402
from tests.plugins.repos import make_repo  # noqa: E402



@dataclass(frozen=True)
class Config:
    jobs: int
    viewers: int
    servers: int = 2
    interval: float = 3.0
    duration: float = 30.0
    line_bytes: int = 200
    viewer_procs: int = 4
    patch_procs: int = 2

    @classmethod
    def of(cls, quick: bool) -> Config:
        return cls(50, 100, duration=12.0, viewer_procs=2, patch_procs=1) if quick else cls(500, 1000)


# ---- the parent ---------------------------------------------------------------------------------


def _latencies(
    accepted: list[tuple[int, int, float, float]], delivered: list[tuple[int, int, int, float]], watchers_of: dict[int, int]
) -> tuple[list[float], list[float], int]:
    """Per (PATCH, watcher of its job): first delivery with end >= the PATCH's end, minus its 202
    (clamped at 0: the viewer may have the bytes before the patcher has the 202), and minus the
    moment the PATCH was sent."""
    lanes: dict[int, dict[int, list[tuple[int, float]]]] = {}
    for job, viewer, end, at in delivered:
        lanes.setdefault(job, {}).setdefault(viewer, []).append((end, at))
    ends = {job: {v: ([e for e, _ in lane], lane) for v, lane in views.items()} for job, views in lanes.items()}
    samples, from_sent, missing = [], [], 0
    for job, end, sent_at, at in accepted:
        views = ends.get(job, {})
        missing += max(0, watchers_of.get(job, 0) - len(views))
        for offsets, lane in views.values():
            index = bisect.bisect_left(offsets, end)
            if index == len(lane):
                missing += 1
            else:
                samples.append(max(0.0, lane[index][1] - at))
                from_sent.append(lane[index][1] - sent_at)
    return samples, from_sent, missing


async def _setup_jobs(url: str, workdir: Path, count: int) -> tuple[int, list[tuple[int, str]]]:
    yaml = "".join(f"job_{i}:\n  script: [echo {i}]\n" for i in range(count))
    make_repo(workdir / "repo", yaml)
    async with httpx.AsyncClient(base_url=url, headers={"PRIVATE-TOKEN": ROOT_TOKEN}, timeout=120) as admin:
        runner = (await admin.post("/api/v4/user/runners", json={"description": "bench"})).json()
        project = (await admin.post("/api/v4/projects", json={"source": str(workdir / "repo")})).json()
        (await admin.post(f"/api/v4/projects/{project['id']}/pipeline")).raise_for_status()
    jobs = []
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        body = {"token": runner["token"], "info": {"name": "bench", "features": {"trace_checksum": True}}}
        while len(jobs) < count:
            response = await http.post("/api/v4/jobs/request", json=body)
            response.raise_for_status()
            job = response.json()
            ack = {"token": job["token"], "state": "running", "output": {}}
            (await http.put(f"/api/v4/jobs/{job['id']}", json=ack)).raise_for_status()
            jobs.append((job["id"], job["token"]))
    return project["id"], jobs


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            line = next(l for l in status if l.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0.0
    return int(line.split()[1]) / 1024


def _split(items: list, parts: int) -> list[list]:
    return [items[i::parts] for i in range(parts) if items[i::parts]]


def _stream_phase(
    ctx: Any, cluster: support.Cluster, postgres_pid: int, redis_url: str, project: int, jobs: list, cfg: Config, mode: str
) -> dict[str, Any]:
    """One measured phase: ``mode`` "sse" (M live tails) or "poll" (M/10 pollers)."""
    servers = len(cluster.urls)
    watchers = cfg.viewers if mode == "sse" else max(1, cfg.viewers // 10)
    targets = [(project, jobs[i % len(jobs)][0], i % servers) for i in range(watchers)]
    out, stop, ready = ctx.Queue(), ctx.Event(), ctx.Semaphore(0)
    procs = []
    if mode == "sse":
        for part in _split(targets, cfg.viewer_procs):
            procs.append(ctx.Process(target=_viewer_proc, args=(cluster.urls, part, ready, stop, out), daemon=True))
    else:
        for part in _split(targets, cfg.viewer_procs):
            procs.append(ctx.Process(target=_poller_proc, args=(cluster.urls[part[0][2]], [(p, j) for p, j, _ in part], stop, out), daemon=True))
    for proc in procs:
        proc.start()
    if mode == "sse":
        for _ in procs:
            if not ready.acquire(timeout=300):
                raise RuntimeError("viewers did not attach")
    channel_out, channel_ready = ctx.Queue(), ctx.Semaphore(0)
    channel = ctx.Process(target=_channel_proc, args=(redis_url, channel_ready, stop, channel_out), daemon=True)
    channel.start()
    channel_ready.acquire(timeout=60)
    support.log(f"{mode}: {watchers} watchers attached; streaming {len(jobs)} jobs for {cfg.duration:.0f} s")
    pids = [server.proc.pid for server in cluster.servers if server.proc]
    meter = support.CpuMeter(pids, postgres_pid)
    t0 = time.monotonic() + 1.0
    patch_out = ctx.Queue()
    patchers = [ctx.Process(target=_patch_proc, args=(cluster.urls, part, cfg, t0, patch_out), daemon=True) for part in _split(jobs, cfg.patch_procs)]
    for proc in patchers:
        proc.start()
    peak = {pid: 0.0 for pid in pids}
    reports = []  # read while the patchers run: a child cannot exit before its report left the pipe
    while len(reports) < len(patchers):
        for pid in pids:
            peak[pid] = max(peak[pid], _rss_mb(pid))
        try:
            reports.append(patch_out.get(timeout=0.5))
        except queue.Empty:
            if not any(proc.is_alive() for proc in patchers) and patch_out.empty():
                raise RuntimeError("a patch client died without a report") from None
    load = [round(x, 2) for x in os.getloadavg()]  # the 1-minute figure covers the streaming
    accepted, patch_cpu, failed_patches = [], 0.0, 0
    for got, cpu in reports:
        failed_patches += sum(row[1] for row in got if row[0] == -1)
        accepted += [row for row in got if row[0] != -1]
        patch_cpu += cpu
    time.sleep(2.0)  # let the last bytes arrive
    stop.set()
    delivered, viewer_cpu, reconnects = [], 0.0, 0
    for _ in procs:
        got, cpu = out.get(timeout=120)
        reconnects += sum(count for job, _, count, _ in got if job == -1)
        delivered += [row for row in got if row[0] != -1]
        viewer_cpu += cpu
    announced = channel_out.get(timeout=60)
    for proc in procs + patchers + [channel]:
        proc.join(30)
    cpu = meter.stop()
    watchers_of: dict[int, int] = {}
    for _, job, _ in targets:
        watchers_of[job] = watchers_of.get(job, 0) + 1
    samples, from_sent, missing = _latencies(accepted, delivered, watchers_of)
    from_announce, _, _ = _latencies(announced, delivered, watchers_of)
    return {
        "watchers": watchers,
        "patches": len(accepted),
        "patches_per_s": round(len(accepted) / cfg.duration, 1),
        "deliveries": len(samples),
        "viewer_reconnects": reconnects,
        "failed_patches": failed_patches,
        "latency": support.latency_summary(samples, censored=missing),
        "latency_from_patch_sent": support.latency_summary(from_sent, censored=missing),
        "latency_from_append_announced": support.latency_summary(from_announce),
        "patch_round_trip": support.latency_summary([at - sent_at for _, _, sent_at, at in accepted]),
        "load_average_after_streaming": load,
        "server_rss_peak_mb": round(max(peak.values()), 1),
        "server_rss_peak_mb_each": [round(peak[pid], 1) for pid in pids],
        "server_rss_total_mb": round(sum(peak.values()), 1),
        "viewer_clients_cpu_s": round(viewer_cpu, 2),
        "patch_clients_cpu_s": round(patch_cpu, 2),
        **cpu,
    }


def _pubsub_floor(ctx: Any, redis_url: str, rate: float, count: int) -> dict[str, Any]:
    import redis

    out, ready = ctx.Queue(), ctx.Semaphore(0)
    proc = ctx.Process(target=_subscriber_proc, args=(redis_url, ready, out, count))
    proc.start()
    ready.acquire(timeout=60)
    client = redis.Redis.from_url(redis_url)
    sent = {}
    for index in range(count):
        sent[index] = time.monotonic()
        client.publish(CHANNEL, str(index))
        time.sleep(1 / rate)
    got = out.get(timeout=60)
    proc.join(10)
    client.close()
    samples = [at - sent[index] for index, at in got]
    return {"messages": count, "latency": support.latency_summary(samples, censored=count - len(samples))}


async def measure(svc: support.Services, quick: bool, cfg: Config | None = None) -> dict[str, Any]:
    """The blocking phases run on this coroutine's thread: nothing else shares its loop."""
    cfg = cfg or Config.of(quick)
    ctx = multiprocessing.get_context("spawn")
    phases: dict[str, Any] = {}
    for mode in ("sse", "poll"):
        svc.flush_redis()
        database = svc.fresh_database(f"bench_viewers_{mode}")
        settings = {"savepoint_policy": "log", "trace_update_interval_watched": 3, "sse_heartbeat": 15}
        with support.Cluster(svc, database, cfg.servers, f"viewers-{mode}", **settings) as cluster:
            project, jobs = await _setup_jobs(cluster.urls[0], svc.workdir / f"viewers-{mode}", cfg.jobs)
            phases[mode] = _stream_phase(ctx, cluster, svc.postgres.proc.pid, svc.redis.url, project, jobs, cfg, mode)
    rate = phases["sse"]["patches_per_s"] or 10.0
    floor = _pubsub_floor(ctx, svc.redis.url, rate, int(rate * min(cfg.duration, 10)))
    sse, poll = phases["sse"], phases["poll"]
    p50, p99 = sse["latency"]["p50_ms"], sse["latency"]["p99_ms"]
    goals = [
        {"goal": "PATCH accepted -> byte at viewer p99", "target": "< 100 ms", "measured": p99, "passed": p99 is not None and p99 < 100},
        {"goal": "server RSS (peak per process)", "target": "< 300 MB", "measured": sse["server_rss_peak_mb"], "passed": sse["server_rss_peak_mb"] < 300},
    ]
    rows = [
        [f"SSE live tail ({sse['watchers']} viewers)", p50, p99, sse["latency"]["censored"], sse["server_rss_peak_mb"], sse["servers_cpu_s"], sse["viewer_clients_cpu_s"], 1.0],
        [f"polling GET /trace 1 s ({poll['watchers']} pollers)", poll["latency"]["p50_ms"], poll["latency"]["p99_ms"], poll["latency"]["censored"], poll["server_rss_peak_mb"], poll["servers_cpu_s"], poll["viewer_clients_cpu_s"], support.ratio(poll["latency"]["p99_ms"], p99)],
        ["  same, from the append announced on Redis", sse["latency_from_append_announced"]["p50_ms"], sse["latency_from_append_announced"]["p99_ms"], None, None, None, None, None],
        ["  same, from the PATCH sent", sse["latency_from_patch_sent"]["p50_ms"], sse["latency_from_patch_sent"]["p99_ms"], None, None, None, None, None],
        ["  PATCH sent -> 202 in hand", sse["patch_round_trip"]["p50_ms"], sse["patch_round_trip"]["p99_ms"], None, None, None, sse["patch_clients_cpu_s"], None],
        ["bare Redis pub/sub round trip", floor["latency"]["p50_ms"], floor["latency"]["p99_ms"], floor["latency"]["censored"], None, None, None, support.ratio(floor["latency"]["p99_ms"], p99)],
    ]
    header = ["path (latency from the 202 in hand)", "p50 ms", "p99 ms", "missed", "server RSS MB", "server cpu s", "client cpu s", "p99 / SSE p99"]
    return {
        "config": {**cfg.__dict__},
        "figures": {"sse": sse, "poll": poll, "pubsub_floor": floor},
        "goals": goals,
        "table": {"header": header, "rows": rows},
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python bench/traces_viewers.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--viewers", type=int)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--viewer-procs", type=int)
    args = parser.parse_args(argv)
    cfg = Config.of(args.quick)
    overrides = {k: v for k, v in {"jobs": args.jobs, "viewers": args.viewers, "duration": args.duration, "viewer_procs": args.viewer_procs}.items() if v}
    cfg = replace(cfg, **overrides)
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-viewers-") as tmp, support.services(Path(tmp)) as svc:
        results = asyncio.run(measure(svc, args.quick, cfg))
        results["environment"] = support.environment(svc)
    print(support.table(results["table"]["rows"], results["table"]["header"]))
    for goal in results["goals"]:
        print(f"{goal['goal']}: {goal['measured']} (target {goal['target']}): {'PASS' if goal['passed'] else 'FAIL'}")
    name = "traces_viewers-quick.json" if args.quick else "traces_viewers.json"
    support.write_results(support.RESULTS / name, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
