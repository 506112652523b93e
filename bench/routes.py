"""Route benchmark: the server's steady-state CPU per request of each route a one-job pipeline uses.

Run ``./dev bench routes`` (N=300) or ``./dev bench routes --quick`` (N=100). One ``conveyor
server`` (default settings, the benchmark's throwaway PostgreSQL and Redis), a project whose
``.gitlab-ci.yml`` has one job, one registered runner driven by ``RunnerClient``
(``tests/plugins/runner_clients.py``: the Go runner's bodies and headers). After a warm-up of
``--warmup`` whole job lives (start-up imports, first compiles, prepared statements), each route
gets a batch of N requests, sent one after the other in a job's order:

1. ``POST /projects/:id/pipeline`` (N pipelines of one job),
2. ``POST /jobs/request`` (each a 201),
3. ``PUT /jobs/:id state=running`` (the acknowledgement),
4. ``PATCH /jobs/:id/trace`` (one 64-byte log),
5. ``PUT /jobs/:id state=success`` (the final update, until it answers 200).

``server_cpu_ms``: the server process's CPU (``/proc``, utime + stime) over the batch / N, its
background loops included (the final update wakes the archiver); ``idle_cpu_ms`` is what the
server spent per second doing nothing, before the batches, for reference. PostgreSQL's CPU over
the batch / N is given too. ``--profile DIR`` also writes a cProfile of each batch alone
(``DIR/<route>.prof``; read with ``bench/profile_report.py``), warm-up excluded: the server is
started with ``bench/profiling`` on its path and profiles between SIGUSR1 and SIGUSR2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import support  # noqa: E402
from bench.runner import Bench  # noqa: E402
from tests.plugins.runner_clients import Assigned, RunnerClient  # noqa: E402

YAML = "job:\n  variables:\n    GIT_STRATEGY: none\n  script:\n    - echo one\n"
LOG = b"".join(b"line %d of the job log\n" % i for i in range(3))
ROUTES = ("POST pipeline", "POST jobs/request", "PUT jobs/:id running", "PATCH jobs/:id/trace", "PUT jobs/:id final")


class Server:
    """The server process's CPU and, when profiling, its profile switch."""

    def __init__(self, pid: int, postgres_pid: int, profile: Path | None) -> None:
        self.pid, self.postgres_pid, self.profile = pid, postgres_pid, profile

    def cpu(self) -> tuple[float, float]:
        meter = support.CpuMeter([self.pid], self.postgres_pid)
        return meter._start[1], meter._start[2]

    async def batch(self, name: str, count: int, step: Callable[[int], Awaitable[None]]) -> dict[str, Any]:
        if self.profile:
            os.kill(self.pid, signal.SIGUSR1)
            await asyncio.sleep(0.2)
        server, postgres = self.cpu()
        started = time.perf_counter()
        for index in range(count):
            await step(index)
        seconds = time.perf_counter() - started
        server_end, postgres_end = self.cpu()
        if self.profile:
            (self.profile / "current").write_text(name.replace(" ", "_").replace("/", "_").replace(":", ""))
            os.kill(self.pid, signal.SIGUSR2)
            await asyncio.sleep(0.5)
        return {"requests": count, "server_cpu_ms": round((server_end - server) * 1000 / count, 2),
                "postgresql_cpu_ms": round((postgres_end - postgres) * 1000 / count, 2),
                "wall_ms": round(seconds * 1000 / count, 2)}  # fmt: skip


async def measure(bench: Bench, server: Server, project: int, token: str, count: int, warmup: int) -> dict[str, Any]:
    runner = RunnerClient(token, "s_bench_routes", [bench.url])
    url = bench.url
    try:
        async def life() -> None:
            bench.http.post(f"/projects/{project}/pipeline").raise_for_status()
            job = await runner.request_job(url)
            assert job is not None
            await runner.acknowledge(url, job)
            await runner.patch_trace(url, job, LOG)
            await runner.finish(url, job, LOG)

        for _ in range(warmup):
            await life()
        before = server.cpu()[0]
        await asyncio.sleep(2)
        idle = (server.cpu()[0] - before) * 1000 / 2
        jobs: list[Assigned] = []

        async def create(_: int) -> None:
            bench.http.post(f"/projects/{project}/pipeline").raise_for_status()

        async def claim(_: int) -> None:
            job = await runner.request_job(url)
            assert job is not None, "a pending job was not handed out"
            jobs.append(job)

        async def acknowledge(index: int) -> None:
            await runner.acknowledge(url, jobs[index])

        async def patch(index: int) -> None:
            response = await runner.patch_trace(url, jobs[index], LOG)
            assert response.status_code == 202, response.text

        async def final(index: int) -> None:
            response = await runner.finish(url, jobs[index], LOG)
            assert response.status_code == 200, response.text

        results = {"idle_cpu_ms_per_s": round(idle, 2)}
        for name, step in zip(ROUTES, (create, claim, acknowledge, patch, final)):
            support.log(f"{name}: {count} requests")
            results[name] = await server.batch(name, count, step)
        results["total_server_cpu_ms"] = round(sum(results[name]["server_cpu_ms"] for name in ROUTES), 2)
        results["total_server_postgresql_cpu_ms"] = round(
            results["total_server_cpu_ms"] + sum(results[name]["postgresql_cpu_ms"] for name in ROUTES), 2
        )
        return results
    finally:
        await runner.aclose()


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 24's per-job CPU goal (server + PostgreSQL + Redis <= 25 ms, bench/e2e) as far as the
    five requests of a one-job pipeline reach it: a floor of the per-job figure, which adds the
    background passes, the archive and Redis."""
    measured = results["total_server_postgresql_cpu_ms"]
    return [{"goal": "server + PostgreSQL CPU, the five requests of a one-job pipeline (ms)", "target": "<= 25",
             "measured": measured, "passed": measured <= 25}]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 requests per route")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--profile", type=Path, default=None, help="cProfile each batch into this directory")
    cfg = parser.parse_args(argv)
    if cfg.quick:
        cfg.requests = 100
    if cfg.profile:
        cfg.profile.mkdir(parents=True, exist_ok=True)
        os.environ["BENCH_PROFILE_DIR"] = str(cfg.profile.resolve())
        os.environ["BENCH_PROFILE_ON_SIGNAL"] = "1"
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parent / "profiling"), os.environ.get("PYTHONPATH")]))
    cfg.output = cfg.output or support.RESULTS / ("routes-quick.json" if cfg.quick else "routes.json")
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp, support.services(Path(tmp)) as svc:
        database = svc.fresh_database("routes_bench")
        with support.Cluster(svc, database, 1, "server") as cluster:
            bench = Bench(cluster, database, Path(tmp))
            project = bench.project("routes", YAML)
            token = bench.http.post("/user/runners", json={"description": "routes", "run_untagged": True}).raise_for_status().json()["token"]
            server = Server(cluster.servers[0].proc.pid, svc.postgres.proc.pid, cfg.profile)
            results: dict[str, Any] = {"benchmark": "routes", "environment": support.environment(svc)}
            results.update(asyncio.run(measure(bench, server, project, token, cfg.requests, cfg.warmup)))
            results["environment"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    rows = [(name, results[name]["server_cpu_ms"], results[name]["postgresql_cpu_ms"], results[name]["wall_ms"]) for name in ROUTES]
    rows.append(("total", results["total_server_cpu_ms"], "", ""))
    print(support.table(rows, ("route", "server CPU ms/req", "PostgreSQL CPU ms/req", "wall ms/req")))
    env = results["environment"]
    print(f"idle server CPU: {results['idle_cpu_ms_per_s']} ms/s; load {env['load_average_at_start']} -> {env['load_average_at_end']}")
    results["goals"] = goals(results)
    for goal in results["goals"]:
        print(f"{'PASS' if goal['passed'] else 'FAIL'}  {goal['goal']}: {goal['measured']} ({goal['target']})")
    support.write_results(cfg.output, results)
    print(f"\nwritten to {cfg.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
