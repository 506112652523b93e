"""End-to-end benchmark: N one-job pipelines through the whole of Conveyor, against Buildbot doing
the same work in the same run.

Run ``./dev bench e2e`` (N=200, W=4; a few minutes) or ``./dev bench e2e --quick`` (N=40).

**Conveyor:** one ``conveyor server`` process (embedded defaults: PostgreSQL and Redis are the
benchmark's throwaway ones), W ``conveyor runner run`` processes (shell executor, ``concurrent``
1, long polling, gitlab-runner's defaults), a project whose ``.gitlab-ci.yml`` has one job
(``GIT_STRATEGY: none``, a three-line script). A pipeline's life: ``POST /pipeline`` (expand the
config, insert pipeline and job), claim (``jobs/request``), acknowledgement ``PUT``, the log's
PATCH, the final update, the log archived. **Buildbot:** a master and W workers, one builder with
one ``ShellCommand`` of the same script, builds forced over HTTP (``bench/e2e_buildbot.py``).

Each system runs two phases: **sequential** (one client creates the N pipelines one after the
other, each ``POST`` awaited, none waited for) and **concurrent** (8 clients share the N). A phase
ends when every job has finished (and, for Conveyor, its log is archived). Figures per phase:

- ``jobs_per_s``: N / (last finish - first submission).
- ``create_ms``: the submitting ``POST``'s latency (client side), p50/p99.
- ``create_to_start`` / ``create_to_finish``: the client's clock before the ``POST`` to the job's
  ``started_at`` / ``finished_at`` (PostgreSQL's clock, same host) or the build's start / finish
  (the master's ``time.time()`` at its ``new`` / ``finished`` messages).
- ``cpu_ms_per_job``: CPU (utime + stime + reaped children, ``/proc``) of the server, PostgreSQL
  (postmaster, its backends), Redis, the runners (their job shells included), over the phase, / N;
  Buildbot's master and workers likewise.
- ``transactions_per_job``: ``pg_stat_database`` xact_commit + xact_rollback delta / N, the
  benchmark's own completion polls subtracted. Read 11 s after the phase's start and end
  (``support.settled_transactions``: a backend may hold its counts for 10 s), the idle
  background passes of those 11 s subtracted (``idle_transactions_per_s``, measured once before
  the first phase, with nothing running).
- ``peak_rss_mib``: the largest ``VmRSS`` seen of the server / a runner (sampled every 50 ms).
- ``runner_requests_per_job``: the runners' answered requests by endpoint and status (their
  ``conveyor_runner_requests_total``) over the phase / N; the idle long polls included.

**Creation alone:** ``POST /pipeline`` p50/p99 for the same commit as a previous pipeline, and for
a new commit whose ``.gitlab-ci.yml`` changed (a new blob), after the phases, the runners stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg  # noqa: E402
import httpx  # noqa: E402

from bench import support  # noqa: E402
from bench.dispatch_setup import asyncpg_dsn  # noqa: E402
from bench.e2e_buildbot import Buildbot  # noqa: E402
from bench.e2e_report import goals, report  # noqa: E402
from bench.runner import Bench, rss_kib  # noqa: E402
from tests.integration.runner.cli import ConfigRunner, scrape  # noqa: E402
from tests.plugins.services import free_port  # noqa: E402

SCRIPT = ["echo one", "echo two", "echo three"]
YAML = "job:\n  tags: [shell]\n  variables:\n    GIT_STRATEGY: none\n  script:\n" + "".join(f"    - {line}\n" for line in SCRIPT)
CLIENTS = 8


class Sampler:
    """Peak VmRSS per named group of pids, sampled every 50 ms in a thread."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups, self.peaks = groups, {name: 0 for name in groups}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            for name, pids in self.groups.items():
                for pid in pids:
                    try:
                        self.peaks[name] = max(self.peaks[name], rss_kib(pid))
                    except (OSError, StopIteration):
                        pass

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return {name: round(kib / 1024, 1) for name, kib in self.peaks.items()}


def cpu_seconds(pids: list[int]) -> float:
    return sum(support._cpu_ticks(pid) for pid in pids) / os.sysconf("SC_CLK_TCK")


async def submit(post: Any, count: int, clients: int) -> list[tuple[float, float, Any]]:
    """``count`` submissions by ``clients`` concurrent clients: (wall clock before, seconds, result)."""
    done: list[tuple[float, float, Any]] = []
    remaining = iter(range(count))

    async def client() -> None:
        for _ in remaining:
            before, started = time.time(), time.perf_counter()
            result = await post()
            done.append((before, time.perf_counter() - started, result))

    await asyncio.gather(*(client() for _ in range(clients)))
    return done


def summary(created: list[tuple[float, float, Any]], times: dict[Any, tuple[float | None, float | None]]) -> dict[str, Any]:
    starts = [times[key][0] - before for before, _, key in created if times.get(key, (None,))[0]]
    finishes = [times[key][1] - before for before, _, key in created if times.get(key, (None, None))[1]]
    last = max(times[key][1] for _, _, key in created if times.get(key, (None, None))[1])
    first = min(before for before, _, _ in created)
    return {
        "jobs": len(created), "finished": len(finishes), "jobs_per_s": round(len(finishes) / (last - first), 2),
        "create_ms": support.latency_summary([seconds for _, seconds, _ in created]),
        "create_to_start": support.latency_summary(starts, len(created) - len(starts)),
        "create_to_finish": support.latency_summary(finishes, len(created) - len(finishes)),
    }  # fmt: skip


class Conveyor:
    def __init__(self, svc: support.Services, workdir: Path, runners: int, settings: dict[str, str]) -> None:
        self.svc = svc
        self.database = svc.fresh_database("e2e_bench")
        self.cluster = support.Cluster(svc, self.database, 1, "server", **settings)
        self.bench = Bench(self.cluster, self.database, workdir)
        self.project = self.bench.project("e2e", YAML)
        registered = [self.bench.register(f"runner-{i}", "shell", None, 1) for i in range(runners)]
        self.configs, self.addresses = [config for config, _ in registered], [address for _, address in registered]
        self.runners: list[ConfigRunner] = []
        self.polls = 0
        self.idle_tx_per_s: float | None = None

    def start_runners(self, timeout: float = 60.0) -> None:
        """Start the runners; return once each polls and its start-up CPU (imports, ~0.4 s each)
        is spent, so none of it is counted as a phase's per-job cost."""
        self.runners = [ConfigRunner(config) for config in self.configs]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all("runner started" in r.log() for r in self.runners):
            time.sleep(0.1)
        before = cpu_seconds([r.proc.pid for r in self.runners])
        while time.monotonic() < deadline:  # each has polled once and holds a long poll
            time.sleep(0.5)
            now = cpu_seconds([r.proc.pid for r in self.runners])
            if now == before:
                break
            before = now

    def stop_runners(self) -> None:
        for runner in self.runners:
            runner.stop()
        self.runners = []

    def stop(self) -> None:
        self.stop_runners()
        self.cluster.stop()

    async def phase(self, count: int, clients: int) -> dict[str, Any]:
        server = [s.proc.pid for s in self.cluster.servers]
        runners = [r.proc.pid for r in self.runners]
        dsn = asyncpg_dsn(self.database)
        if self.idle_tx_per_s is None:  # the background passes' own rate, nothing running
            idle_from = await support.settled_transactions(dsn)
            self.idle_tx_per_s = (await support.settled_transactions(dsn) - idle_from) / support.STATS_FLUSH_S
        rss = Sampler({"server": server, "runner": runners})
        tx_before = await support.settled_transactions(dsn)  # what came before has landed
        meter = support.CpuMeter(server, self.svc.postgres.proc.pid, self.svc.redis.proc.pid)
        runner_cpu = cpu_seconds(runners)
        requests = self.runner_requests()
        async with httpx.AsyncClient(base_url=self.cluster.urls[0] + "/api/v4", headers={"PRIVATE-TOKEN": support.ROOT_TOKEN},
                                     timeout=120, limits=httpx.Limits(max_connections=clients)) as http:  # fmt: skip
            async def post() -> int:
                return (await http.post(f"/projects/{self.project}/pipeline")).raise_for_status().json()["id"]

            created = await submit(post, count, clients)
        times = await self._wait([pipeline for _, _, pipeline in created])
        cpu = meter.stop()
        runner_cpu = cpu_seconds(runners) - runner_cpu
        # once the phase's counts have landed, less the idle passes (and this reading) meanwhile
        settled = await support.settled_transactions(dsn)
        tx = settled - tx_before - self.polls - round(self.idle_tx_per_s * support.STATS_FLUSH_S)
        result = summary(created, times)
        result["cpu_ms_per_job"] = {
            "server": round(cpu["servers_cpu_s"] * 1000 / count, 2), "postgresql": round(cpu["postgresql_cpu_s"] * 1000 / count, 2),
            "redis": round(cpu["redis_cpu_s"] * 1000 / count, 2), "runner": round(runner_cpu * 1000 / count, 2),
        }  # fmt: skip
        result["cpu_ms_per_job"]["server_pg_redis"] = round(sum(result["cpu_ms_per_job"][k] for k in ("server", "postgresql", "redis")), 2)
        result["transactions_per_job"] = round(tx / count, 2)
        result["idle_transactions_per_s"] = round(self.idle_tx_per_s, 2)
        result["runner_requests_per_job"] = {key: round((value - requests.get(key, 0)) / count, 2)
                                             for key, value in sorted(self.runner_requests().items())}  # fmt: skip
        result["peak_rss_mib"] = rss.stop()
        return result

    def runner_requests(self) -> dict[str, float]:
        """Requests the runners sent, answered, by ``METHOD path status``, from their ``/metrics``."""
        totals: dict[str, float] = {}
        for address in self.addresses:
            for line in scrape(address).splitlines():
                if line.startswith("conveyor_runner_requests_total{"):
                    labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
                    key = f"{labels['endpoint']} {labels['status']}"
                    totals[key] = totals.get(key, 0) + float(line.rsplit(" ", 1)[1])
        return totals

    async def _wait(self, pipelines: list[int], timeout: float = 600) -> dict[int, tuple[float | None, float | None]]:
        """Every job of ``pipelines`` finished and archived: pipeline id -> (started, finished)."""
        conn = await asyncpg.connect(asyncpg_dsn(self.database))
        self.polls = 0
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                self.polls += 1
                left = await conn.fetchval("SELECT count(*) FROM jobs WHERE pipeline_id = ANY($1::bigint[]) "
                                           "AND NOT (finished_at IS NOT NULL AND trace_archived)", pipelines)  # fmt: skip
                if not left:
                    break
                await asyncio.sleep(0.1)
            rows = await conn.fetch("SELECT pipeline_id, extract(epoch FROM started_at)::float8 AS s, "
                                    "extract(epoch FROM finished_at)::float8 AS f FROM jobs "
                                    "WHERE pipeline_id = ANY($1::bigint[])", pipelines)  # fmt: skip
            self.polls += 1
        finally:
            await conn.close()
        return {row["pipeline_id"]: (row["s"], row["f"]) for row in rows}

    def creation(self, samples: int) -> dict[str, Any]:
        """``POST /pipeline`` alone: the same commit again, then new commits with a new config blob."""
        http = self.bench.http
        http.post(f"/projects/{self.project}/pipeline").raise_for_status()  # the commit seen once
        same = []
        for _ in range(samples):
            started = time.perf_counter()
            http.post(f"/projects/{self.project}/pipeline").raise_for_status()
            same.append(time.perf_counter() - started)
        repo = self.bench.workdir / "e2e"
        new = []
        for index in range(samples):
            (repo / ".gitlab-ci.yml").write_text(YAML + f"# commit {index}\n")
            _git(repo, "commit", "-qam", f"commit {index}")
            started = time.perf_counter()
            http.post(f"/projects/{self.project}/pipeline").raise_for_status()
            new.append(time.perf_counter() - started)
        return {"same_commit": support.latency_summary(same), "new_commit_new_config": support.latency_summary(new)}


def _git(repo: Path, *args: str) -> None:
    import subprocess

    subprocess.run(["git", "-C", str(repo), "-c", "user.name=bench", "-c", "user.email=bench@conveyor.invalid", *args], check=True)


async def buildbot_phase(bb: Buildbot, count: int, clients: int) -> dict[str, Any]:
    rss = Sampler({"master": [bb.master_pid], "worker": bb.worker_pids})
    master, workers = cpu_seconds([bb.master_pid]), cpu_seconds(bb.worker_pids)
    async with httpx.AsyncClient(base_url=bb.url, timeout=120, limits=httpx.Limits(max_connections=clients)) as http:
        async def post() -> int:
            return (await http.post("/force")).raise_for_status().json()["brid"]

        created = await submit(post, count, clients)
    wanted = {brid for _, _, brid in created}
    deadline = time.monotonic() + 600
    while True:
        times = {k: tuple(v) for k, v in bb.times().items() if k in wanted}
        if sum(1 for v in times.values() if v[1]) == len(wanted) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    result = summary(created, times)  # type: ignore[arg-type]
    result["cpu_ms_per_job"] = {"master": round((cpu_seconds([bb.master_pid]) - master) * 1000 / count, 2),
                                "workers": round((cpu_seconds(bb.worker_pids) - workers) * 1000 / count, 2)}  # fmt: skip
    result["peak_rss_mib"] = rss.stop()
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 pipelines, 10 creation samples")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--runners", type=int, default=4)
    parser.add_argument("--creation-samples", type=int, default=50)
    parser.add_argument("--skip", default="", help="comma-separated: buildbot, creation")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--profile", type=Path, default=None,
                        help="cProfile the server and runners into this directory (bench/profiling/)")
    support.add_server_settings(parser)
    cfg = parser.parse_args(argv)
    cfg.settings = support.server_settings(parser, cfg.server_setting)
    if cfg.profile:
        cfg.profile.mkdir(parents=True, exist_ok=True)
        os.environ["BENCH_PROFILE_DIR"] = str(cfg.profile.resolve())
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parent / "profiling"), os.environ.get("PYTHONPATH")]))
    if cfg.quick:
        cfg.jobs, cfg.creation_samples = 40, 10
    cfg.output = cfg.output or support.RESULTS / ("e2e-quick.json" if cfg.quick else "e2e.json")
    skip = set(filter(None, cfg.skip.split(",")))
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp, support.services(Path(tmp)) as svc:
        results: dict[str, Any] = {"benchmark": "e2e", "environment": support.environment(svc), "jobs": cfg.jobs,
                                   "runners": cfg.runners, "clients": CLIENTS, "script": SCRIPT, "server_settings": cfg.settings}  # fmt: skip
        conveyor = Conveyor(svc, Path(tmp), cfg.runners, cfg.settings)
        try:
            conveyor.start_runners()
            for name, clients in (("sequential", 1), ("concurrent", CLIENTS)):
                support.log(f"conveyor {name}: {cfg.jobs} pipelines, {clients} client(s)")
                results.setdefault("conveyor", {})[name] = asyncio.run(conveyor.phase(cfg.jobs, clients))
            conveyor.stop_runners()
            if "creation" not in skip:  # last: its pipelines stay pending
                support.log(f"conveyor: pipeline creation alone, {cfg.creation_samples} samples each")
                results["creation"] = conveyor.creation(cfg.creation_samples)
        finally:
            conveyor.stop()
        if "buildbot" not in skip:
            bb = Buildbot(Path(tmp) / "buildbot", cfg.runners, "\n".join(SCRIPT), free_port(), free_port())
            try:
                for name, clients in (("sequential", 1), ("concurrent", CLIENTS)):
                    support.log(f"buildbot {name}: {cfg.jobs} builds, {clients} client(s)")
                    results.setdefault("buildbot", {})[name] = asyncio.run(buildbot_phase(bb, cfg.jobs, clients))
            finally:
                bb.stop()
        results["environment"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["goals"] = goals(results)
    print(report(results))
    support.write_results(cfg.output, results)
    print(f"\nwritten to {cfg.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
