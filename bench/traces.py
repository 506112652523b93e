"""Live-log benchmark (issue 4): ``./dev bench traces [--quick] [--parts patch,viewers,archive]``.

Three parts, each a module exposing ``measure(svc, quick) -> {"figures", "goals", "table"}``,
each measured against a baseline in the same run on the same throwaway PostgreSQL and Redis:

- (a) ``traces_patch``: PATCH throughput with 4 KiB and 1 MiB bodies against an accept-and-discard
  route on the same server stack (goal >= 60%);
- (b) ``traces_viewers``: jobs streaming while SSE viewers watch: PATCH accepted -> byte delivered
  latency (goal p99 < 100 ms) and server RSS (goal < 300 MB);
- (c) ``traces_archive``: archiving a 1 GiB log: time and peak RSS growth (goal < 100 MB).

Writes ``bench/results/traces.json`` (``traces-quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import support  # noqa: E402

PARTS = {"patch": "bench.traces_patch", "viewers": "bench.traces_viewers", "archive": "bench.traces_archive"}


async def run(svc: support.Services, parts: list[str], quick: bool) -> dict[str, Any]:
    results: dict[str, Any] = {"benchmark": "traces", "config": {"quick": quick, "parts": parts}, "environment": support.environment(svc)}
    results["parts"], results["goals"] = {}, []
    for part in parts:
        try:
            module = importlib.import_module(PARTS[part])
        except ModuleNotFoundError as exc:
            results["parts"][part] = {"error": f"not available: {exc}"}
            continue
        measured = await module.measure(svc, quick)
        results["parts"][part] = measured
        results["goals"] += measured["goals"]
    results["environment"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def report(results: dict[str, Any]) -> str:
    out = []
    for part, measured in results["parts"].items():
        out.append(f"\n{part}")
        if "table" in measured:
            out.append(support.table(measured["table"]["rows"], measured["table"]["header"]))
        else:
            out.append(measured.get("error", "?"))
    rows = [[g["goal"], g["target"], g["measured"], "PASS" if g["passed"] else "FAIL"] for g in results["goals"]]
    out += ["\nGoals", support.table(rows, ["goal", "target", "measured", "result"])]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="./dev bench traces", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke-run sizes")
    parser.add_argument("--parts", default="patch,viewers,archive", help="parts to run (patch,viewers,archive)")
    parser.add_argument("--output", type=Path, help="results file")
    args = parser.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    output = args.output or support.ROOT / "bench" / "results" / ("traces-quick.json" if args.quick else "traces.json")
    started = support.Stopwatch()
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp, support.services(Path(tmp)) as svc:
        results = asyncio.run(run(svc, parts, args.quick))
    results["wall_seconds"] = round(started(), 1)
    support.write_results(output, results)
    print(report(results))
    print(f"\nwritten to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
