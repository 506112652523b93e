"""Pipeline states benchmark: what retries, resource groups and the scheduler cost per job.

Run ``./dev bench pipeline_states`` (``--jobs`` 300 per phase, about a minute) or ``--quick``.
Real PostgreSQL (a throwaway pgserver), the server's own queue code in this process (no HTTP, no
runner): each phase creates pipelines with ``Pipelines.store``, claims every job with the claim
statement and applies the runner's final ``PUT`` with ``JobUpdates.update`` (the transaction
that locks the pipeline, ends the job, retries it if ``retry:`` says so, and runs ``advance``).

Phases, each on a fresh database:

- **plain** (the baseline): ``--pipelines`` pipelines of ``--jobs / --pipelines`` one-stage jobs,
  each claimed and finished ``success``. Figure: final-update latency per job (p50/p99).
- **retry**: the same jobs with ``retry: 1``; every first attempt fails ``script_failure``, so its
  final update also marks it retried and inserts the next attempt; the second attempt passes.
  Figures: latency of the failing update (with the retry) and of the passing one.
- **resource_group**: ``--jobs`` one-job pipelines whose job shares one ``resource_group``; each
  final update hands the group to the next pipeline's waiting job in the same transaction.
- **scheduler idle pass**: one ``Scheduler.tick`` with ``--backlog`` delayed jobs not yet due and
  ``--backlog`` jobs waiting for a busy group, against a tick on an empty database: the cost a
  server pays every ``schedule_interval`` (partial indexes keep it flat).

Ratios are against the plain final update (or the empty tick) measured in the same run, after
a discarded warm-up phase. Each process (the bench) is single-threaded and sequential: these are
latencies of one transaction on an otherwise idle database, not throughput under contention.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import support  # noqa: E402
from conveyor.protocol import JobSpec, UpdateJobRequest  # noqa: E402
from conveyor.server import auth  # noqa: E402
from conveyor.server.db import StatementObserver, create_engine, queries  # noqa: E402
from conveyor.server.queue import JobUpdates, Pipelines  # noqa: E402
from conveyor.server.queue.schedule import Scheduler  # noqa: E402


class _Notifier:
    """The scheduler's notifier, reduced to counting ticks (no runners to wake here)."""

    def __init__(self) -> None:
        self.ticks = 0

    async def tick(self, queued: object = None) -> None:
        self.ticks += 1


def _spec(name: str, **extra: Any) -> JobSpec:
    return JobSpec(name=name, stage="test", stage_idx=0, script=["true"], **extra)


async def _project(engine, name: str):  # noqa: ANN001, ANN202
    async with engine.begin() as conn:
        return await queries.projects.insert(conn, name, f"/tmp/{name}", "main")


async def _claim_and_finish(engine, updates: JobUpdates, runner_id: int, state: str) -> float | None:  # noqa: ANN001
    """Claim the next pending job and apply a final PUT; seconds the final update took."""
    token = auth.generate(auth.JOB_PREFIX)
    async with engine.begin() as conn:
        claimant = queries.jobs.Claimant(runner_id, None, [], run_untagged=True, protected_only=False)
        job = await queries.jobs.claim(conn, claimant, auth.digest(token))
    if job is None:
        return None
    request = UpdateJobRequest(token=token, state=state, output={"bytesize": 0}, exit_code=0 if state == "success" else 1,
                               failure_reason=None if state == "success" else "script_failure")
    started = time.perf_counter()
    await updates.update(job, request, 0)
    return time.perf_counter() - started


async def _drain(engine, updates: JobUpdates, states: list[str]) -> dict[str, list[float]]:  # noqa: ANN001
    """Finish jobs until none is pending; the n-th attempt of a job ends ``states[n]``."""
    seen: dict[str, list[float]] = {state: [] for state in states}
    async with engine.begin() as conn:
        runner_id = await queries.runners.insert(conn, auth.digest("bench-runner"), "bench")
    while True:
        async with engine.connect() as conn:
            pending = (await conn.execute(queries.jobs.jobs.select().where(queries.jobs.jobs.c.status == "pending").limit(1))).first()
        if pending is None:
            return seen
        async with engine.connect() as conn:
            retried = await queries.jobs.retry_count(conn, pending.pipeline_id, pending.name)
        state = states[min(retried, len(states) - 1)]
        took = await _claim_and_finish(engine, updates, runner_id, state)
        if took is not None:
            seen[state].append(took)


async def _phase(url: str, name: str, pipelines: int, specs: list[JobSpec], states: list[str]) -> dict[str, Any]:
    engine = create_engine(url, StatementObserver("raise"), pool_size=5)
    try:
        project = await _project(engine, name)
        store = Pipelines(engine, sources=None)  # type: ignore[arg-type]
        for _ in range(pipelines):  # one commit: no pipeline makes another redundant (auto-cancel)
            await store.store(project, "main", "0" * 40, specs)
        seen = await _drain(engine, JobUpdates(engine, accept_timeout=300), states)
    finally:
        await engine.dispose()
    return {state: support.latency_summary(values) for state, values in seen.items()}


async def _scheduler_tick(url: str, backlog: int) -> dict[str, Any]:
    engine = create_engine(url, StatementObserver("raise"), pool_size=5)
    try:
        if backlog:
            project = await _project(engine, "sched")
            store = Pipelines(engine, sources=None)  # type: ignore[arg-type]
            delayed = [_spec(f"d{i}", when="delayed", start_in=3600) for i in range(backlog)]
            await store.store(project, "main", "1" * 40, delayed)
            grouped = [_spec(f"g{i}", resource_group="busy") for i in range(backlog + 1)]
            await store.store(project, "main", "1" * 40, grouped)  # one holds the group, the rest wait
        scheduler = Scheduler(engine, _Notifier(), interval=1)  # type: ignore[arg-type]
        times = []
        for _ in range(50):
            started = time.perf_counter()
            result = await scheduler.tick()
            times.append(time.perf_counter() - started)
            assert result.started == 0 and result.handed_over == 0
    finally:
        await engine.dispose()
    return support.latency_summary(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--pipelines", type=int, default=10)
    parser.add_argument("--backlog", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="60 jobs, backlog 500")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.backlog = 60, 500
    per_pipeline = max(1, args.jobs // args.pipelines)
    with tempfile.TemporaryDirectory() as tmp, support.services(Path(tmp)) as svc:
        env = support.environment(svc)
        # warm-up (discarded): the first phase would otherwise pay for cold caches and plans
        asyncio.run(_phase(svc.fresh_database("warmup"), "warmup", 2, [_spec(f"j{i}", retry_max=1) for i in range(20)],
                           ["failed", "success"]))
        plain = asyncio.run(_phase(svc.fresh_database("plain"), "plain", args.pipelines,
                                   [_spec(f"j{i}") for i in range(per_pipeline)], ["success"]))
        retry = asyncio.run(_phase(svc.fresh_database("retry"), "retry", args.pipelines,
                                   [_spec(f"j{i}", retry_max=1) for i in range(per_pipeline)], ["failed", "success"]))
        group = asyncio.run(_phase(svc.fresh_database("grouped"), "grouped", args.jobs,
                                   [_spec("deploy", resource_group="production")], ["success"]))
        empty = asyncio.run(_scheduler_tick(svc.fresh_database("tick_empty"), 0))
        loaded = asyncio.run(_scheduler_tick(svc.fresh_database("tick_loaded"), args.backlog))
        env["load_average_at_end"] = [round(x, 2) for x in __import__("os").getloadavg()]
    base = plain["success"]
    rows = [
        ["final update, plain job (baseline)", base["samples"], base["p50_ms"], base["p99_ms"], 1.0],
        ["final update, failed + auto-retry", retry["failed"]["samples"], retry["failed"]["p50_ms"], retry["failed"]["p99_ms"],
         support.ratio(retry["failed"]["p50_ms"], base["p50_ms"])],
        ["final update, retried attempt passes", retry["success"]["samples"], retry["success"]["p50_ms"], retry["success"]["p99_ms"],
         support.ratio(retry["success"]["p50_ms"], base["p50_ms"])],
        ["final update, hands over resource group", group["success"]["samples"], group["success"]["p50_ms"], group["success"]["p99_ms"],
         support.ratio(group["success"]["p50_ms"], base["p50_ms"])],
        ["scheduler pass, empty (baseline)", empty["samples"], empty["p50_ms"], empty["p99_ms"], 1.0],
        [f"scheduler pass, {args.backlog} delayed + {args.backlog} waiting", loaded["samples"], loaded["p50_ms"], loaded["p99_ms"],
         support.ratio(loaded["p50_ms"], empty["p50_ms"])],
    ]
    print(support.table(rows, ["phase", "samples", "p50 ms", "p99 ms", "p50 ratio"]))
    result = {
        "environment": env,
        "parameters": vars(args),
        "final_update": {"plain": plain, "retry": retry, "resource_group": group},
        "scheduler_pass": {"empty": empty, "loaded": loaded},
        "ratios_p50": {row[0]: row[4] for row in rows},
    }
    support.RESULTS.mkdir(parents=True, exist_ok=True)
    (support.RESULTS / "pipeline_states.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
