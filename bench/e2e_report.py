"""``bench/e2e``'s goals (issue 24) and its table: Conveyor's figures beside Buildbot's, measured
in the same run, and their ratios."""

from __future__ import annotations

from typing import Any

from bench import support

PHASES = ("sequential", "concurrent")


def _worst(results: dict[str, Any], *path: str) -> float | None:
    """The larger of the two phases' figure at ``path`` (None when a phase lacks it)."""
    values = []
    for phase in PHASES:
        value: Any = results.get("conveyor", {}).get(phase)
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        values.append(value)
    return None if any(v is None for v in values) else max(values)


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    creation = results.get("creation", {})
    same, new = creation.get("same_commit", {}), creation.get("new_commit_new_config", {})
    bb = results.get("buildbot", {}).get("concurrent", {}).get("jobs_per_s")
    ours = results.get("conveyor", {}).get("concurrent", {}).get("jobs_per_s")
    rows = [
        ("one-job pipeline creation p50, same commit (ms)", "<= 15", same.get("p50_ms"), lambda v: v <= 15),
        ("one-job pipeline creation p99, same commit (ms)", "<= 50", same.get("p99_ms"), lambda v: v <= 50),
        ("one-job pipeline creation p50, new commit and config (ms)", "<= 40", new.get("p50_ms"), lambda v: v <= 40),
        ("server + PostgreSQL + Redis CPU per job (ms, worse phase)", "<= 25",
         _worst(results, "cpu_ms_per_job", "server_pg_redis"), lambda v: v <= 25),
        ("runner CPU per job, its job shells included (ms, worse phase)", "<= 15",
         _worst(results, "cpu_ms_per_job", "runner"), lambda v: v <= 15),
        ("database transactions per one-job pipeline life (worse phase)", "<= 10",
         _worst(results, "transactions_per_job"), lambda v: v <= 10),
        ("jobs/s against Buildbot's, 8 clients, same run", ">= 8x", support.ratio(ours, bb), lambda v: v >= 8),
        ("create -> finish p99 (ms, worse phase)", "<= 500", _worst(results, "create_to_finish", "p99_ms"), lambda v: v <= 500),
    ]  # fmt: skip
    return [{"goal": goal, "target": target, "measured": measured, "passed": measured is not None and bool(test(measured))}
            for goal, target, measured, test in rows]  # fmt: skip


def report(results: dict[str, Any]) -> str:
    rows = []
    for phase in PHASES:
        ours = results.get("conveyor", {}).get(phase)
        theirs = results.get("buildbot", {}).get(phase, {})
        if not ours:
            continue
        cpu = ours["cpu_ms_per_job"]
        rows.append([f"conveyor {phase}", ours["jobs_per_s"], support.ratio(ours["jobs_per_s"], theirs.get("jobs_per_s")),
                     ours["create_ms"]["p50_ms"], ours["create_ms"]["p99_ms"],
                     ours["create_to_start"]["p50_ms"], ours["create_to_start"]["p99_ms"],
                     ours["create_to_finish"]["p50_ms"], ours["create_to_finish"]["p99_ms"],
                     cpu["server_pg_redis"], f'{cpu["server"]}/{cpu["postgresql"]}/{cpu["redis"]}', cpu["runner"],
                     ours["transactions_per_job"], f'{ours["peak_rss_mib"]["server"]}/{ours["peak_rss_mib"]["runner"]}'])
        if theirs:
            cpu = theirs["cpu_ms_per_job"]
            rows.append([f"buildbot {phase}", theirs["jobs_per_s"], 1.0, theirs["create_ms"]["p50_ms"], theirs["create_ms"]["p99_ms"],
                         theirs["create_to_start"]["p50_ms"], theirs["create_to_start"]["p99_ms"],
                         theirs["create_to_finish"]["p50_ms"], theirs["create_to_finish"]["p99_ms"],
                         cpu["master"], "-", cpu["workers"], None,
                         f'{theirs["peak_rss_mib"]["master"]}/{theirs["peak_rss_mib"]["worker"]}'])  # fmt: skip
    header = ["system, phase", "jobs/s", "x buildbot", "create p50", "p99", "->start p50", "p99", "->finish p50", "p99",
              "server CPU ms/job", "server/pg/redis", "runner CPU ms/job", "tx/job", "peak RSS MiB"]  # fmt: skip
    out = [support.table(rows, header)]
    if "creation" in results:
        c = results["creation"]
        out.append(support.table([[name, s["p50_ms"], s["p99_ms"], s["samples"]] for name, s in c.items()],
                                 ["POST /pipeline alone", "p50 ms", "p99 ms", "samples"]))  # fmt: skip
    out.append(support.table([[g["goal"], g["target"], g["measured"], g["passed"]] for g in results["goals"]],
                             ["goal", "target", "measured", "passed"]))  # fmt: skip
    env = results["environment"]
    out.append(f"load average: {env['load_average_at_start']} at start, {env.get('load_average_at_end')} at end")
    return "\n\n".join(out)
