"""Runner benchmark: how quickly and cheaply ``conveyor runner`` runs jobs.

Run ``./dev bench runner`` (a few minutes) or ``./dev bench runner --quick``. Everything is real and
local: a throwaway PostgreSQL and Redis, one ``conveyor server`` process with its default
settings, and ``conveyor runner run`` processes registered through ``conveyor runner register``
(gitlab-runner's defaults: ``check_interval`` 3 s, long polling against the server). The docker
executor runs against Podman's Docker API set up as the tests do (``tests/plugins/podman.py``).

**Pickup → first log byte.** One-job pipelines (``echo hello``) are created one after the other
through the API; for each, the time from the job's ``queued_at`` (set by PostgreSQL when the job
became pending) to the moment the server's trace endpoint first returns a byte of its log (polled
every 10 ms on the same host). This is what a user watching the job page waits for.

**Per-job overhead.** The same script (5,000 lines of output, then 1 s of sleep) runs directly
(``bash -c``, output drained through a pipe) and as a Conveyor job: ``queued_at`` to the job's
``finished_at`` (clone, stages, log upload and final update included). Reported as the ratio of
medians and the difference in milliseconds.

**RSS with 8 concurrent jobs.** A pipeline of 8 parallel jobs (each prints a line, sleeps 6 s,
prints again) on one runner entry with ``concurrent = 8``; the runner process's resident memory
(``VmRSS``, the jobs' shells excluded) is sampled every 50 ms. Reported: idle RSS before the
pipeline, peak during it, their ratio, and the peak of ``conveyor_runner_jobs_running`` from the
runner's own /metrics (proof the 8 jobs overlapped).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg  # noqa: E402
import httpx  # noqa: E402

from bench import support  # noqa: E402
from bench.dispatch_setup import asyncpg_dsn  # noqa: E402
from tests.integration.runner.cli import ConfigRunner, metric, runner_env  # noqa: E402
from tests.plugins.repos import make_repo  # noqa: E402
from tests.plugins.services import free_port  # noqa: E402

WORK = 'for i in $(seq 1 5000); do echo "line $i of the job output"; done; sleep 1'
# Jobs are tagged with the executor and each runner takes only its own tag, so one executor's jobs
# never go to the other's runner (or to a request it left behind when it stopped).
HELLO = "one:\n  image: {image}\n  tags: [{tag}]\n  script: [echo hello]\n"
OVERHEAD = "work:\n  image: {image}\n  tags: [{tag}]\n  script:\n    - '{work}'\n"
PARALLEL = "".join(f"job{i}:\n  image: {{image}}\n  tags: [{{tag}}]\n  script: [echo start, sleep 6, echo end]\n"
                   for i in range(8))


class Bench:
    def __init__(self, cluster: support.Cluster, database: str, workdir: Path) -> None:
        self.url = cluster.urls[0]
        self.http = httpx.Client(base_url=self.url + "/api/v4", headers={"PRIVATE-TOKEN": support.ROOT_TOKEN},
                                 timeout=60)  # fmt: skip
        self.database = database
        self.workdir = workdir

    def project(self, name: str, yaml: str) -> int:
        make_repo(self.workdir / name, yaml)
        return self.http.post("/projects", json={"source": str(self.workdir / name)}).raise_for_status().json()["id"]

    def pipeline(self, project: int) -> tuple[int, list[int]]:
        pipeline = self.http.post(f"/projects/{project}/pipeline").raise_for_status().json()
        jobs = self.http.get(f"/projects/{project}/pipelines/{pipeline['id']}/jobs", params={"per_page": 100}).json()
        return pipeline["id"], [job["id"] for job in jobs]

    def wait(self, project: int, pipeline: int, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.http.get(f"/projects/{project}/pipelines/{pipeline}").json()["status"]
            if status in ("success", "failed", "canceled"):
                return status
            time.sleep(0.05)
        raise TimeoutError(f"pipeline {pipeline} did not finish")

    def first_byte(self, project: int, job: int, timeout: float = 60) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.http.get(f"/projects/{project}/jobs/{job}/trace").content:
                return time.time()
            time.sleep(0.01)
        raise TimeoutError(f"job {job} never logged")

    def times(self, job_ids: list[int]) -> dict[int, tuple[float, float | None]]:
        async def fetch() -> dict[int, tuple[float, float | None]]:
            conn = await asyncpg.connect(asyncpg_dsn(self.database))
            try:
                rows = await conn.fetch("SELECT id, extract(epoch FROM queued_at)::float8 AS q, "
                                        "extract(epoch FROM finished_at)::float8 AS f FROM jobs "
                                        "WHERE id = ANY($1::bigint[])", job_ids)  # fmt: skip
            finally:
                await conn.close()
            return {row["id"]: (row["q"], row["f"]) for row in rows}

        return asyncio.run(fetch())

    def register(self, name: str, executor: str, engine: Any, concurrent: int) -> tuple[Path, str]:
        body = {"description": name, "tag_list": [executor], "run_untagged": False}
        token = self.http.post("/user/runners", json=body).raise_for_status().json()["token"]
        config = self.workdir / name / "config.toml"
        address = f"127.0.0.1:{free_port()}"
        options = ["--executor", executor, "--concurrent", str(concurrent), "--listen-address", address]
        if engine is not None:
            options += ["--docker-host", engine.host, "--docker-image", engine.image, "--docker-pull-policy",
                        "if-not-present"]  # fmt: skip
        subprocess.run([sys.executable, "-m", "conveyor", "runner", "register", "--config", str(config),
                        "--url", self.url, "--token", token, *options],
                       env=runner_env(), check=True, capture_output=True)  # fmt: skip
        return config, address


def pickup(bench: Bench, image: str, tag: str, samples: int) -> dict[str, Any]:
    project = bench.project(f"hello-{time.monotonic_ns()}", HELLO.format(image=image, tag=tag))
    seen: dict[int, float] = {}
    for _ in range(samples):
        pipeline, (job,) = bench.pipeline(project)
        seen[job] = bench.first_byte(project, job)
        bench.wait(project, pipeline)
    queued = bench.times(list(seen))
    return support.latency_summary([seen[job] - queued[job][0] for job in seen])


def direct_runs(samples: int) -> list[float]:
    durations = []
    for _ in range(samples):
        started = time.monotonic()
        subprocess.run(["bash", "-c", WORK], stdout=subprocess.PIPE, check=True)
        durations.append(time.monotonic() - started)
    return durations


def overhead(bench: Bench, image: str, tag: str, samples: int, direct: list[float]) -> dict[str, Any]:
    project = bench.project(f"work-{time.monotonic_ns()}", OVERHEAD.format(image=image, tag=tag, work=WORK))
    jobs = []
    for _ in range(samples):
        pipeline, (job,) = bench.pipeline(project)
        assert bench.wait(project, pipeline) == "success"
        jobs.append(job)
    durations = [finished - queued for queued, finished in bench.times(jobs).values() if finished]
    conveyor, baseline = statistics.median(durations), statistics.median(direct)
    return {"conveyor_median_s": round(conveyor, 3), "direct_median_s": round(baseline, 3),
            "ratio": support.ratio(conveyor, baseline), "overhead_ms": round((conveyor - baseline) * 1000, 1),
            "samples": len(durations)}  # fmt: skip


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def concurrency(bench: Bench, runner: ConfigRunner, address: str, image: str, tag: str) -> dict[str, Any]:
    project = bench.project(f"parallel-{time.monotonic_ns()}", PARALLEL.format(image=image, tag=tag))
    time.sleep(1)
    idle = rss_kib(runner.proc.pid)
    pipeline, _ = bench.pipeline(project)
    peak, running = idle, 0.0
    while True:
        peak = max(peak, rss_kib(runner.proc.pid))
        try:
            text = httpx.get(f"http://{address}/metrics", timeout=5).text
            running = max(running, metric(text, "conveyor_runner_jobs_running", runner="conveyor-runner"))
        except httpx.HTTPError:
            pass
        status = bench.http.get(f"/projects/{project}/pipelines/{pipeline}").json()["status"]
        if status in ("success", "failed", "canceled"):
            break
        time.sleep(0.05)
    return {"idle_rss_mib": round(idle / 1024, 1), "peak_rss_mib": round(peak / 1024, 1),
            "ratio": support.ratio(peak, idle), "peak_jobs_running": int(running), "pipeline": status}  # fmt: skip


def run_executor(bench: Bench, executor: str, engine: Any, cfg: argparse.Namespace, direct: list[float]) -> dict:
    image = engine.image if engine is not None else "none"
    config, address = bench.register(f"runner-{executor}", executor, engine, 8)
    runner = ConfigRunner(config)
    try:
        support.log(f"{executor}: pickup -> first log byte, {cfg.samples} jobs")
        result: dict[str, Any] = {"pickup_to_first_byte": pickup(bench, image, executor, cfg.samples)}
        support.log(f"{executor}: per-job overhead, {cfg.overhead_samples} jobs")
        result["overhead"] = overhead(bench, image, executor, cfg.overhead_samples, direct)
        support.log(f"{executor}: RSS with 8 concurrent jobs")
        result["concurrent_8"] = concurrency(bench, runner, address, image, executor)
    except BaseException:
        support.log(f"runner log:\n{runner.log()[-3000:]}")
        raise
    finally:
        runner.stop()
    return result


def report(results: dict[str, Any]) -> str:
    rows = []
    for executor, result in results["executors"].items():
        pick, cost, mem = result["pickup_to_first_byte"], result["overhead"], result["concurrent_8"]
        rows.append([executor, pick["p50_ms"], pick["p99_ms"], cost["conveyor_median_s"], cost["direct_median_s"],
                     cost["ratio"], cost["overhead_ms"], mem["idle_rss_mib"], mem["peak_rss_mib"],
                     mem["peak_jobs_running"]])  # fmt: skip
    header = ["executor", "first byte p50 ms", "p99 ms", "job s", "direct s", "ratio", "overhead ms",
              "idle RSS MiB", "8-job RSS MiB", "jobs at once"]  # fmt: skip
    return support.table(rows, header)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 pickup and 3 overhead samples")
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--overhead-samples", type=int, default=8)
    parser.add_argument("--executors", default="shell,docker")
    parser.add_argument("--output", type=Path, default=None)
    cfg = parser.parse_args(argv)
    if cfg.quick:
        cfg.samples, cfg.overhead_samples = 5, 3
    cfg.output = cfg.output or support.RESULTS / ("runner-quick.json" if cfg.quick else "runner.json")
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp, support.services(Path(tmp)) as svc:
        workdir = Path(tmp)
        results: dict[str, Any] = {"benchmark": "runner", "environment": support.environment(svc), "executors": {}}
        database = svc.fresh_database("runner_bench")
        with support.Cluster(svc, database, 1, "server") as cluster:
            bench = Bench(cluster, database, workdir)
            support.log(f"direct baseline: {cfg.overhead_samples} runs")
            direct = direct_runs(cfg.overhead_samples)
            for executor in cfg.executors.split(","):
                engine = None
                if executor == "docker":
                    from tests.plugins.podman import start_podman

                    (workdir / "podman").mkdir()
                    engine = start_podman(workdir / "podman")
                try:
                    results["executors"][executor] = run_executor(bench, executor, engine, cfg, direct)
                finally:
                    if engine is not None:
                        from tests.plugins.podman import shutdown

                        shutdown(engine)
        results["environment"]["load_average_at_end"] = [round(x, 2) for x in __import__("os").getloadavg()]
    print(report(results))
    support.write_results(cfg.output, results)
    print(f"\nwritten to {cfg.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
