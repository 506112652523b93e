"""Goals and the printed tables of ``bench/dispatch.py``, computed from its results dict."""

from __future__ import annotations

from typing import Any

from bench import support


def goals(results: dict[str, Any], *, main_depth: int, depths: tuple[int, ...]) -> list[dict[str, Any]]:
    """The issue's goals, each with its measured value and pass (True), fail (False) or not measured (None)."""
    conveyor = results.get("throughput", {}).get("conveyor", {}).get("jobs_per_s")
    raw = results.get("throughput", {}).get("raw_skip_locked", {}).get("jobs_per_s")
    ceiling = results.get("throughput", {}).get("http_ceiling", {}).get("jobs_per_s")
    procrastinate = results.get("throughput", {}).get("procrastinate", {}).get("jobs_per_s")
    pickup = {int(d): r for d, r in results.get("pickup", {}).get("conveyor", {}).items() if r.get("valid")}
    main_depth = main_depth if main_depth in pickup or not pickup else max(pickup)

    def p(depth: int, key: str) -> tuple[float | None, bool]:
        """(percentile in ms, measured); a percentile reached by jobs never delivered is None."""
        result = pickup.get(depth)
        if result is None:
            return None, False
        return result["pickup_latency"][key], True

    def goal(name: str, target: str, value: float | None, passed: bool | None) -> dict[str, Any]:
        return {"goal": name, "target": target, "measured": value, "passed": passed}

    def depth_goal(key: str) -> dict[str, Any]:
        (high, high_measured), (low, low_measured) = p(max(depths), key), p(min(depths), key)
        name = f"pickup {key[:3]} at {max(depths)} / at {min(depths)} pending"
        if len(depths) < 2 or not (high_measured and low_measured) or low is None:
            return goal(name, "<= 1.5x", None, None)
        if high is None:  # jobs went undelivered at the large backlog only
            return goal(name, "<= 1.5x", None, False)
        value = support.ratio(high, low)
        return goal(name, "<= 1.5x", value, value is not None and value <= 1.5)

    share = support.ratio(conveyor, ceiling)
    raw_share = support.ratio(conveyor, raw)
    vs_procrastinate = support.ratio(conveyor, procrastinate)
    main_p99, main_measured = p(main_depth, "p99_ms")
    return [
        goal("throughput vs HTTP ceiling (same runner clients, no-op routes)", ">= 0.5x", share,
             None if share is None else share >= 0.5),
        goal("throughput vs raw SKIP LOCKED loop (reference, no goal)", "-", raw_share, None),
        # issue 24: procrastinate (a task queue over one SQL connection per worker, no HTTP) stays a
        # reference row like the raw loop; the peer with a goal is Buildbot in bench/e2e
        goal("throughput vs procrastinate (reference, no goal)", "-", vs_procrastinate, None),
        goal(f"pickup p99 with {main_depth} pending (ms)", "< 100", main_p99,
             None if not main_measured else main_p99 is not None and main_p99 < 100),
        depth_goal("p50_ms"),
        depth_goal("p99_ms"),
    ]


def table(results: dict[str, Any]) -> str:
    """The three tables printed at the end of a run: throughput, pickup latency, goals."""
    throughput = results.get("throughput", {})
    rows = []
    raw = throughput.get("raw_skip_locked", {}).get("jobs_per_s")
    ceiling = throughput.get("http_ceiling", {}).get("jobs_per_s")
    for name, r in throughput.items():
        latency = r.get("claim_latency", {})
        rows.append([name, r.get("assigned"), r.get("seconds"), r.get("jobs_per_s"), latency.get("p50_ms"),
                     latency.get("p99_ms"), r.get("db_transactions_per_job"), support.ratio(r.get("jobs_per_s"), ceiling),
                     support.ratio(r.get("jobs_per_s"), raw)])  # fmt: skip
    parts = ["Throughput (drain)", support.table(
        rows, ["system", "jobs", "seconds", "jobs/s", "claim p50 ms", "claim p99 ms", "db tx/job", "vs HTTP ceiling", "vs raw"])]
    rows = []
    for system, by_depth in results.get("pickup", {}).items():
        for depth, r in sorted(by_depth.items(), key=lambda item: int(item[0])):
            latency = r["pickup_latency"]
            rows.append([system, int(depth), latency["samples"], latency["p50_ms"], latency["p90_ms"], latency["p99_ms"],
                         latency["max_ms"], r.get("missing"), r.get("db_transactions_per_job"),
                         "ok" if r.get("valid", True) else "INVALID"])
    parts += ["", "Pickup latency (job pending -> runner holds it; '-' = reached by undelivered jobs)",
              support.table(rows, ["system", "backlog", "samples", "p50 ms", "p90 ms", "p99 ms", "max ms", "missing",
                                   "db tx/job", "valid"])]
    rows = [[g["goal"], g["target"], g["measured"], g["passed"]] for g in results["goals"]]
    parts += ["", "Goals", support.table(rows, ["goal", "target", "measured", "result"])]
    return "\n".join(parts)
