"""Dispatch benchmark: how fast ``POST /api/v4/jobs/request`` hands pending jobs to runners.

Run ``./dev bench dispatch`` (the issue's sizes, a few minutes) or ``./dev bench dispatch --quick``
(a smoke run, well under a minute of measuring). Everything is real and local: a throwaway
PostgreSQL and Redis, ``--servers`` ``conveyor server`` processes, runners as asyncio HTTP clients
(``tests/plugins/runner_clients.py``), all on 127.0.0.1. Each phase gets a fresh database and
fresh server processes, so no phase inherits another's dead rows or held requests.

**Throughput (drain).** ``--jobs`` pending jobs (10,000) are bulk-inserted, then ``--runners``
runners (200) are released at once. A runner loops like gitlab-runner 18.5+: request, on 201
the acknowledgement ``PUT state=running`` (``--no-ack`` drops it), then the next request; on
204 it waits ``--check-interval`` (3 s, gitlab-runner's default). Jobs assigned per second =
jobs / (last 201 in hand - release). The request -> 201 time is reported as *claim latency*.

Baselines, same PostgreSQL, same job count, in the same run:

- **HTTP ceiling** (the goal's baseline): the same runner fleet, the same server processes
  HTTP stack, against no-op routes shaped like ``jobs/request`` and the acknowledgement ``PUT``
  (``/bench/ceiling``, mounted with ``bench_routes``; ``server/api/bench.py``): the same request
  models parsed, a 201 payload built by the real builder and serialized, no token check, no
  database. What dispatch would reach if claiming cost nothing.
- **raw SKIP LOCKED** (a reference row since issue 24): ``--runners`` asyncpg connections, each looping one
  statement that dequeues the oldest row of ``pending_jobs`` ``FOR UPDATE SKIP LOCKED`` and marks
  the job running (the claim Conveyor started from; no HTTP, no auth, no payload).
- **procrastinate**: ``--servers`` worker processes (one per Conveyor server), concurrency
  ``runners / servers`` each, a pool of ``--procrastinate-pool`` connections each (a Conveyor
  server's pool is 10 + 10 overflow), a no-op task. Jobs/s = jobs / (last task start - release).

**Pickup latency** is the time from a job becoming pending to a runner holding it: the job's
``queued_at`` (set by PostgreSQL in the transaction that makes it pending) to the moment the
runner has the 201 response in hand (same host, same clock). Measured in steady state, open
loop: the runners are idle and long-polling, and ``--pickup-jobs`` one-job pipelines are created
through the API at ``--pickup-rate`` per second, alternating servers (the real enqueue path,
including the server's wake-up of held requests). Measuring it on a pre-filled queue instead
would report how long jobs wait behind each other, not how fast dispatch reacts.

**Queue depth.** The same pickup measurement is repeated with a backlog of ``--depths`` pending
jobs (1,000 / 10,000 / 100,000) that the runners may not take (tagged ``bench-backlog``; GitLab's
rule: a job's tags must be a subset of the runner's) in another project. The claim has to look
past them, as a runner does past other runners' work on a busy instance. If the server hands
out a backlog job anyway, the phase is reported invalid. The 10,000 backlog is the main
scenario's figure (200 runners, 10,000 pending jobs). procrastinate's pickup latency (LISTEN/
NOTIFY, deferring at the same rate) is reported next to it for reference.

Goals (reported, never adjusted): Conveyor >= 50% of the HTTP ceiling; p99 pickup < 100 ms with
the main backlog; pickup p50 and p99 with the largest backlog within 1.5x of those with the
smallest. The raw loop and procrastinate are reference rows (issue 24: "the raw SKIP LOCKED loop
and procrastinate stay as reference rows"; issue 3's "ahead of procrastinate" compared an HTTP
dispatcher with in-process SQL workers, and the peer with a goal is now Buildbot in bench/e2e).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg  # noqa: E402

from bench import support  # noqa: E402
from bench import dispatch_report  # noqa: E402
from bench import dispatch_setup as setup  # noqa: E402

RAW_CLAIM = """
WITH candidate AS (
    SELECT job_id FROM pending_jobs ORDER BY job_id LIMIT 1 FOR UPDATE SKIP LOCKED
), dequeued AS (
    DELETE FROM pending_jobs p USING candidate c WHERE p.job_id = c.job_id RETURNING p.job_id
)
UPDATE jobs j SET status = 'running', token_hash = $1, started_at = now(), updated_at = now()
FROM dequeued d WHERE j.id = d.job_id AND j.status = 'pending'
RETURNING j.id
"""


PHASES = {"drain", "ceiling", "raw", "procrastinate", "pickup"}


@dataclass(frozen=True)
class Config:
    runners: int
    jobs: int
    servers: int
    depths: tuple[int, ...]
    pickup_jobs: int
    pickup_rate: float
    check_interval: float
    long_poll_timeout: int
    ack: bool
    phase_timeout: float
    procrastinate_pool: int
    skip: tuple[str, ...]
    quick: bool
    output: Path
    settings: dict[str, str] = field(default_factory=dict)  # --server-setting, for A/B runs


def parse_args(argv: list[str]) -> Config:
    parser = argparse.ArgumentParser(prog="./dev bench dispatch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke-run sizes (overridden by explicit flags)")
    parser.add_argument("--runners", type=int, help="concurrent runners / connections / worker slots (200)")
    parser.add_argument("--jobs", type=int, help="pending jobs drained in the throughput phases (10000)")
    parser.add_argument("--servers", type=int, default=2, help="conveyor server processes (2)")
    parser.add_argument("--depths", help="backlogs for the pickup phases, comma-separated (1000,10000,100000)")
    parser.add_argument("--pickup-jobs", type=int, help="jobs enqueued per pickup phase (500)")
    parser.add_argument("--pickup-rate", type=float, default=20.0, help="jobs enqueued per second in pickup phases (20)")
    parser.add_argument("--check-interval", type=float, default=3.0, help="runner wait after a 204, s (3)")
    parser.add_argument("--long-poll-timeout", type=int, default=50, help="server hold time, s (50)")
    parser.add_argument("--no-ack", dest="ack", action="store_false", help="runners skip the acknowledgement PUT")
    parser.add_argument("--phase-timeout", type=float, default=600.0, help="bound on each phase, s (600)")
    parser.add_argument("--procrastinate-pool", type=int, default=20, help="connections per procrastinate worker")
    parser.add_argument("--skip", default="", help="phases to leave out: ceiling,raw,procrastinate,drain,pickup")
    parser.add_argument("--output", type=Path, help="results file (bench/results/dispatch[-quick].json)")
    support.add_server_settings(parser)
    args = parser.parse_args(argv)
    skip = tuple(s.strip() for s in args.skip.split(",") if s.strip())
    if set(skip) - PHASES:
        parser.error(f"--skip takes {', '.join(sorted(PHASES))}")
    quick = args.quick
    depths = args.depths or ("100,1000,5000" if quick else "1000,10000,100000")
    return Config(
        runners=args.runners or (20 if quick else 200),
        jobs=args.jobs or (1_000 if quick else 10_000),
        servers=args.servers,
        depths=tuple(sorted({int(d) for d in depths.split(",") if d.strip()})),
        pickup_jobs=args.pickup_jobs or (60 if quick else 500),
        pickup_rate=args.pickup_rate,
        check_interval=args.check_interval,
        long_poll_timeout=args.long_poll_timeout,
        ack=args.ack,
        phase_timeout=args.phase_timeout,
        procrastinate_pool=args.procrastinate_pool,
        skip=skip,
        quick=quick,
        output=args.output or support.RESULTS / ("dispatch-quick.json" if quick else "dispatch.json"),
        settings=support.server_settings(parser, args.server_setting),
    )


def _server_settings(cfg: Config) -> dict[str, object]:
    return {"long_poll_timeout": cfg.long_poll_timeout, "savepoint_policy": "log", **cfg.settings}


def _transactions(count: int, jobs: int) -> dict[str, Any]:
    """PostgreSQL transactions during the phase (setup of runners and projects included)."""
    return {"db_transactions": count, "db_transactions_per_job": round(count / jobs, 2) if jobs else None}


def _throughput(count: int, released: float, last: float | None) -> float | None:
    if not count or last is None or last <= released:
        return None
    return round(count / (last - released), 1)


async def conveyor_drain(svc: support.Services, cfg: Config, *, ceiling: bool = False) -> dict[str, Any]:
    """The drain; with ``ceiling`` the same fleet against the no-op runner routes
    (``/bench/ceiling``, ``server/api/bench.py``): the HTTP ceiling, nothing pending."""
    name = "ceiling" if ceiling else "drain"
    support.log(f"conveyor {name}: {cfg.jobs} jobs, {cfg.runners} runners, {cfg.servers} servers")
    database = svc.fresh_database(f"bench_conveyor_{name}")
    svc.flush_redis()
    transactions = await support.transactions(database)
    settings = {**_server_settings(cfg), **({"bench_routes": True} if ceiling else {})}
    with support.Cluster(svc, database, cfg.servers, name, **settings) as cluster:
        async with cluster.admin() as admin:
            project = await setup.create_project(admin, setup.make_source(svc.workdir), "bench")
            tokens = await setup.create_runner_tokens(admin, cfg.runners)
        if not ceiling:
            await setup.insert_pending(database, project["id"], cfg.jobs, tags=[], prefix="drain-")
        urls = [url + "/bench/ceiling" for url in cluster.urls] if ceiling else cluster.urls
        fleet = setup.Fleet(urls, tokens, ack=cfg.ack, check_interval=cfg.check_interval,
                            timeout=cfg.long_poll_timeout + 30)
        done = asyncio.Event()
        fleet.on_assigned.append(lambda _job: done.set() if len(fleet.log.assigned) >= cfg.jobs else None)
        cpu = support.CpuMeter([s.proc.pid for s in cluster.servers], svc.postgres.proc.pid)
        fleet.start()
        try:
            await asyncio.wait_for(done.wait(), cfg.phase_timeout)
        except TimeoutError:
            support.log("conveyor drain: phase timeout")
        used = cpu.stop()
        await fleet.stop()
    transactions = await support.transactions(database) - transactions
    assigned = fleet.log.assigned
    ids = [job.id for job in assigned]
    last = max((job.received_at for job in assigned), default=None)
    return {
        "jobs": cfg.jobs,
        "assigned": len(assigned),
        "handed_out_twice": len(ids) - len(set(ids)),
        "seconds": round(last - fleet.released_at, 3) if last else None,
        "jobs_per_s": _throughput(len(assigned), fleet.released_at, last),
        "claim_latency": support.latency_summary([job.received_at - job.requested_at for job in assigned]),
        **_transactions(transactions, len(assigned)),
        "requests": fleet.log.requests,
        "empty_answers": fleet.log.empty,
        "errors": len(fleet.log.errors),
        "first_errors": fleet.log.errors[:5],
        "savepoints": cluster.savepoints,
        **used,
    }


async def raw_drain(svc: support.Services, cfg: Config) -> dict[str, Any]:
    support.log(f"raw SKIP LOCKED drain: {cfg.jobs} jobs, {cfg.runners} connections")
    database = svc.fresh_database("bench_raw_drain")
    admin = await asyncpg.connect(database)
    try:
        project_id = await admin.fetchval("INSERT INTO projects (name, source) VALUES ('raw', '/raw') RETURNING id")
    finally:
        await admin.close()
    await setup.insert_pending(database, project_id, cfg.jobs, tags=[], prefix="raw-")
    transactions = await support.transactions(database)
    connections = await asyncio.gather(*(asyncpg.connect(database) for _ in range(cfg.runners)))
    claimed: list[tuple[float, float]] = []  # (statement seconds, claimed at)
    deadline = time.monotonic() + cfg.phase_timeout

    async def claimer(conn: asyncpg.Connection) -> None:
        while time.monotonic() < deadline:
            started = time.monotonic()
            job_id = await conn.fetchval(RAW_CLAIM, secrets.token_hex(16))
            if job_id is None:
                if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pending_jobs)"):
                    return
                continue
            claimed.append((time.monotonic() - started, time.time()))

    cpu = support.CpuMeter([], svc.postgres.proc.pid)
    released = time.time()
    try:
        await asyncio.gather(*(claimer(conn) for conn in connections))
    finally:
        used = cpu.stop()
        del used["servers_cpu_s"]  # there are none
        await asyncio.gather(*(conn.close() for conn in connections))
    transactions = await support.transactions(database) - transactions
    last = max((at for _, at in claimed), default=None)
    return {
        "jobs": cfg.jobs,
        "assigned": len(claimed),
        "seconds": round(last - released, 3) if last else None,
        "jobs_per_s": _throughput(len(claimed), released, last),
        "claim_latency": support.latency_summary([seconds for seconds, _ in claimed]),
        **_transactions(transactions, len(claimed)),
        **used,
    }


async def _procrastinate_schema(database: str) -> None:
    from bench import procrastinate_worker

    app, _ = procrastinate_worker.make_app(database, 2)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()


async def procrastinate_drain(svc: support.Services, cfg: Config) -> dict[str, Any]:
    from bench import procrastinate_worker

    support.log(f"procrastinate drain: {cfg.jobs} jobs, {cfg.servers} workers x concurrency {cfg.runners // cfg.servers}")
    database = svc.fresh_database("bench_procrastinate_drain")
    await _procrastinate_schema(database)
    app, _ = procrastinate_worker.make_app(database, 2)
    async with app.open_async():
        task = app.tasks[procrastinate_worker.TASK_NAME]
        for first in range(0, cfg.jobs, 1000):
            await task.batch_defer_async(*({} for _ in range(min(1000, cfg.jobs - first))))
    conn = await asyncpg.connect(database)
    try:
        await conn.execute("VACUUM ANALYZE procrastinate_jobs")
    finally:
        await conn.close()
    transactions = await support.transactions(database)
    workers = setup.ProcrastinateWorkers(database, cfg.servers, max(1, cfg.runners // cfg.servers), cfg.procrastinate_pool, "drain")
    try:
        cpu = support.CpuMeter([proc.pid for proc in workers.procs], svc.postgres.proc.pid)
        workers.release()
        started = await asyncio.to_thread(workers.finish, cfg.phase_timeout)
        used = cpu.stop()
    finally:
        workers.kill()
    assert workers.released_at is not None
    transactions = await support.transactions(database) - transactions
    last = max((at for _, at in started), default=None)
    ids = [job_id for job_id, _ in started]
    return {
        "jobs": cfg.jobs,
        "assigned": len(started),
        "handed_out_twice": len(ids) - len(set(ids)),
        "seconds": round(last - workers.released_at, 3) if last else None,
        "jobs_per_s": _throughput(len(started), workers.released_at, last),
        **_transactions(transactions, len(started)),
        # the workers' own CPU is not measured: they have exited when the phase is read
        "postgresql_cpu_s": used["postgresql_cpu_s"],
    }


async def _open_loop(count: int, rate: float, make: Any) -> None:
    """Call ``make(i)`` (a coroutine) at ``i / rate`` seconds for i < count, not waiting for any."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks = []
    for index in range(count):
        delay = start + index / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(make(index)))
    await asyncio.gather(*tasks)


async def _until(predicate: Any, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()


async def conveyor_pickup(svc: support.Services, cfg: Config, depth: int) -> dict[str, Any]:
    support.log(f"conveyor pickup: backlog {depth}, {cfg.pickup_jobs} jobs at {cfg.pickup_rate}/s, {cfg.runners} runners")
    database = svc.fresh_database(f"bench_conveyor_pickup_{depth}")
    svc.flush_redis()
    transactions = await support.transactions(database)
    with support.Cluster(svc, database, cfg.servers, f"pickup-{depth}", **_server_settings(cfg)) as cluster:
        source = setup.make_source(svc.workdir)
        async with cluster.admin() as admin:
            project = await setup.create_project(admin, source, "bench")
            backlog = await setup.create_project(admin, source, "backlog")
            tokens = await setup.create_runner_tokens(admin, cfg.runners)
        backlog_pipeline = None
        if depth:
            backlog_pipeline = await setup.insert_pending(database, backlog["id"], depth, tags=[setup.BACKLOG_TAG], prefix="backlog-")
        fleet = setup.Fleet(cluster.urls, tokens, ack=cfg.ack, check_interval=cfg.check_interval,
                            timeout=cfg.long_poll_timeout + 30)
        live: dict[int, float] = {}
        foreign: list[int] = []

        def classify(job: Any) -> None:
            if job.job["job_info"].get("pipeline_id") == backlog_pipeline:
                foreign.append(job.id)
            else:
                live.setdefault(job.id, job.received_at)

        fleet.on_assigned.append(classify)
        fleet.start()
        settled = await _until(lambda: len(fleet.log.first_empty) >= cfg.runners, 60 + cfg.check_interval)
        # a runner's first poll is answered at once; after check_interval it polls again, held
        await asyncio.sleep(cfg.check_interval + 1.0)
        cpu = support.CpuMeter([s.proc.pid for s in cluster.servers], svc.postgres.proc.pid)
        admins = [cluster.admin(i) for i in range(cfg.servers)]
        create_errors: list[str] = []

        async def arrive(index: int) -> None:
            response = await admins[index % len(admins)].post(f"/projects/{project['id']}/pipeline")
            if response.status_code != 201:
                create_errors.append(f"{response.status_code} {response.text[:200]}")

        try:
            await _open_loop(cfg.pickup_jobs, cfg.pickup_rate, arrive)
            await _until(lambda: len(live) >= cfg.pickup_jobs - len(create_errors), 30.0)
        finally:
            used = cpu.stop()
            await asyncio.gather(*(a.aclose() for a in admins))
            await fleet.stop()
    transactions = await support.transactions(database) - transactions
    queued = await setup.queued_at(database, list(live))
    latencies = [live[job_id] - queued[job_id] for job_id in live if job_id in queued]
    missing = cfg.pickup_jobs - len(create_errors) - len(live)
    return {
        "backlog": depth,
        "enqueued": cfg.pickup_jobs - len(create_errors),
        "received": len(live),
        "missing": missing,
        "backlog_jobs_handed_out": len(foreign),
        "valid": not foreign,
        "runners_settled": settled,
        "pickup_latency": support.latency_summary(latencies, censored=max(0, missing)),
        **_transactions(transactions, len(live)),
        "requests": fleet.log.requests,
        "empty_answers": fleet.log.empty,
        "errors": len(fleet.log.errors) + len(create_errors),
        "first_errors": (fleet.log.errors + create_errors)[:5],
        "savepoints": cluster.savepoints,
        **used,
    }


async def procrastinate_pickup(svc: support.Services, cfg: Config) -> dict[str, Any]:
    from bench import procrastinate_worker

    support.log(f"procrastinate pickup: {cfg.pickup_jobs} jobs at {cfg.pickup_rate}/s (LISTEN/NOTIFY)")
    database = svc.fresh_database("bench_procrastinate_pickup")
    await _procrastinate_schema(database)
    workers = setup.ProcrastinateWorkers(database, cfg.servers, max(1, cfg.runners // cfg.servers), cfg.procrastinate_pool, "listen")
    try:
        workers.release()
        await asyncio.sleep(1.0)
        app, _ = procrastinate_worker.make_app(database, 4)
        conn = await asyncpg.connect(database)
        try:
            async with app.open_async():
                task = app.tasks[procrastinate_worker.TASK_NAME]

                async def defer(_index: int) -> None:
                    await task.defer_async()

                await _open_loop(cfg.pickup_jobs, cfg.pickup_rate, defer)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                done = await conn.fetchval("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'")
                if done >= cfg.pickup_jobs:
                    break
                await asyncio.sleep(0.1)
            started = await asyncio.to_thread(workers.finish, 30)
            rows = await conn.fetch(
                "SELECT job_id, extract(epoch FROM at)::float8 AS t FROM procrastinate_events WHERE type = 'deferred'"
            )
        finally:
            await conn.close()
    finally:
        workers.kill()
    deferred = {row["job_id"]: row["t"] for row in rows}
    latencies = [at - deferred[job_id] for job_id, at in started if job_id in deferred]
    missing = cfg.pickup_jobs - len({job_id for job_id, _ in started})
    return {
        "backlog": 0,
        "enqueued": cfg.pickup_jobs,
        "received": len(started),
        "missing": missing,
        "pickup_latency": support.latency_summary(latencies, censored=max(0, missing)),
    }


async def run(cfg: Config, svc: support.Services) -> dict[str, Any]:
    results: dict[str, Any] = {"benchmark": "dispatch", "config": {**asdict(cfg), "output": str(cfg.output)},
                               "environment": support.environment(svc), "throughput": {}, "pickup": {}}
    if "drain" not in cfg.skip:
        results["throughput"]["conveyor"] = await conveyor_drain(svc, cfg)
    if "ceiling" not in cfg.skip:
        results["throughput"]["http_ceiling"] = await conveyor_drain(svc, cfg, ceiling=True)
    if "raw" not in cfg.skip:
        results["throughput"]["raw_skip_locked"] = await raw_drain(svc, cfg)
    if "procrastinate" not in cfg.skip:
        results["throughput"]["procrastinate"] = await procrastinate_drain(svc, cfg)
    if "pickup" not in cfg.skip:
        results["pickup"]["conveyor"] = {str(depth): await conveyor_pickup(svc, cfg, depth) for depth in cfg.depths}
        if "procrastinate" not in cfg.skip:
            results["pickup"]["procrastinate"] = {"0": await procrastinate_pickup(svc, cfg)}
    throughput = results["throughput"]
    conveyor = throughput.get("conveyor", {}).get("jobs_per_s")
    results["ratios"] = {
        "conveyor_vs_http_ceiling": support.ratio(conveyor, throughput.get("http_ceiling", {}).get("jobs_per_s")),
        "conveyor_vs_raw": support.ratio(conveyor, throughput.get("raw_skip_locked", {}).get("jobs_per_s")),
        "conveyor_vs_procrastinate": support.ratio(conveyor, throughput.get("procrastinate", {}).get("jobs_per_s")),
    }
    results["goals"] = dispatch_report.goals(results, main_depth=cfg.jobs, depths=cfg.depths)
    results["environment"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def main(argv: list[str]) -> int:
    cfg = parse_args(argv)
    started = support.Stopwatch()
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp, support.services(Path(tmp)) as svc:
        results = asyncio.run(run(cfg, svc))
    results["wall_seconds"] = round(started(), 1)
    support.write_results(cfg.output, results)
    print(dispatch_report.table(results))
    print(f"\nwritten to {cfg.output.relative_to(support.ROOT) if cfg.output.is_relative_to(support.ROOT) else cfg.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
