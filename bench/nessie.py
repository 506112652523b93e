"""bench/nessie: does Conveyor's workload stall a streaming replica the way GitLab's did?

Run ``./dev bench nessie`` (about 6 minutes; ``--duration S`` per phase, ``--savepoints 64,65``
for the escalated phases, ``--phases baseline,savepoints`` to run a subset). Everything is real and
local: a PostgreSQL 16 primary (pgserver's binaries) and a hot standby made with
``pg_basebackup -R`` streaming from it, Redis, ``conveyor server`` and ``conveyor runner``
processes. Load comes from pgbench (pgserver ships it): a write load on the primary (``--writers``
clients, each transaction updating random ``pgbench_accounts`` rows, at most ``--write-rate``
transactions a second) and a read load on the replica (``pgbench -S``, ``--readers`` clients,
unthrottled). The figure is the replica's read TPS in each phase, as a ratio to the baseline:

1. ``baseline``: the write load alone.
2. ``conveyor``: the same write load, a transaction held open on the primary (it has an xid, so
   every replica snapshot's xmin stays behind it), and Conveyor's real workload on the same
   primary: one server (listings read from the replica), one shell runner, pipelines of jobs
   streaming logs created every few seconds, the log and listings read back by a client.
3. ``control``: the long transaction, and one ``SAVEPOINT`` in every write transaction.
4. ``updates_<k>``: the long transaction, ``k`` updates per write transaction, no savepoint
   (the CPU and WAL cost of the heavier writes, for comparison with the next one).
5. ``savepoints_<k>``: the same ``k`` updates, each after its own ``SAVEPOINT`` (``k`` > 64
   overflows the primary backend's subxid cache, which the replica learns through WAL).

For each phase: read TPS, ratio to baseline, ``pg_stat_slru`` ``Subtrans`` reads/hits on the
replica, ``SubtransSLRU``/``SubtransBuffer`` wait samples on the replica (every 0.2 s), and the
findings of ``conveyor doctor postgres`` on both servers taken mid-phase, and the read TPS every
5 s (a cliff shows as a drop once the xids written since the long transaction began outgrow the
32-page SLRU: 65,536 xids). Between phases the long transaction ends, the replica catches up and
``VACUUM (FREEZE)`` resets the table. A 5 s read warm-up comes first and the baseline is measured
again last (``baseline_end``), to show how much the shared machine drifted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg  # noqa: E402

from bench import support  # noqa: E402
from bench.nessie_conveyor import ConveyorWorkload  # noqa: E402
from tests.plugins.services import Postgres, start_postgres, start_redis, start_replica  # noqa: E402

DB = "bench"
SLRU = "SELECT blks_hit, blks_read FROM pg_stat_slru WHERE name = 'Subtrans'"
PHASES = ("baseline", "conveyor", "control", "updates", "savepoints", "baseline_end")
PROGRESS = 5  # seconds between pgbench progress reports (the read TPS series of a phase)
WAITS = "SELECT count(*) FROM pg_stat_activity WHERE wait_event IN ('SubtransSLRU', 'SubtransBuffer')"


def write_script(updates: int, savepoints: bool) -> str:
    lines = []
    for i in range(updates):
        lines += [f"\\set aid{i} random(1, 100000 * :scale)", f"\\set delta{i} random(-5000, 5000)"]
    lines.append("BEGIN;")
    for i in range(updates):
        if savepoints:
            lines.append(f"SAVEPOINT s{i};")
        lines.append(f"UPDATE pgbench_accounts SET abalance = abalance + :delta{i} WHERE aid = :aid{i};")
    lines.append("END;")
    return "\n".join(lines) + "\n"


def _tps(output: str) -> float:
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", output)
    return float(match.group(1)) if match else 0.0


async def pgbench(pg: Postgres, port: int, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        str(pg.bin_dir / "pgbench"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-n", *args, DB,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return out.decode(errors="replace")


async def sample_waits(replica_url: str, stop: asyncio.Event) -> tuple[int, int]:
    conn = await asyncpg.connect(replica_url)
    samples = waiting = 0
    try:
        while not stop.is_set():
            waiting += await conn.fetchval(WAITS)
            samples += 1
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    return samples, waiting


async def doctor_findings(urls: list[str]) -> list[dict[str, Any]]:
    from conveyor.server.db import doctor

    reports = await doctor.examine_all(urls, doctor.Thresholds(long_transaction=5, idle_in_transaction=5))
    return [{"role": r.role, "level": r.level,
             "findings": {f.check: {"level": f.level, "summary": f.summary} for f in r.findings}} for r in reports]


async def phase(name: str, cfg: argparse.Namespace, primary: Postgres, replica: Postgres, script: Path, *,
                long_transaction: bool, conveyor: ConveyorWorkload | None = None) -> dict[str, Any]:
    support.log(f"phase {name}")
    primary_url, replica_url = primary.url(DB), replica.url(DB)
    holder = await asyncpg.connect(primary_url)
    if long_transaction:
        await holder.execute("BEGIN")
        await holder.fetchval("SELECT txid_current()")  # an xid: replica snapshots keep their xmin behind it
    probe = await asyncpg.connect(replica_url)
    slru_before = await probe.fetchrow(SLRU)
    stop = asyncio.Event()
    waits = asyncio.create_task(sample_waits(replica_url, stop))
    if conveyor is not None:
        await conveyor.start()
    duration = str(cfg.duration)
    writes = asyncio.create_task(pgbench(primary, primary.port, "-f", str(script), "-c", str(cfg.writers),
                                         "-j", "1", "-R", str(cfg.write_rate), "-T", duration, "-s", str(cfg.scale)))
    reads = asyncio.create_task(pgbench(replica, replica.port, "-S", "-c", str(cfg.readers), "-j", "2", "-T", duration,
                                        "-P", str(PROGRESS)))
    await asyncio.sleep(cfg.duration / 2)
    findings = await doctor_findings([primary_url, replica_url])
    read_out, write_out = await reads, await writes
    stop.set()
    samples, waiting = await waits
    workload = await conveyor.stop() if conveyor is not None else None
    slru_after = await probe.fetchrow(SLRU)
    await probe.close()
    await holder.close()  # ends the long transaction
    result = {
        "read_tps": _tps(read_out), "write_tps": _tps(write_out), "long_transaction": long_transaction,
        "read_tps_every_5s": [float(x) for x in re.findall(r"progress: [0-9.]+ s, ([0-9.]+) tps", read_out)],
        "subtrans_slru_reads": slru_after["blks_read"] - slru_before["blks_read"],
        "subtrans_slru_hits": slru_after["blks_hit"] - slru_before["blks_hit"],
        "subtrans_wait_samples": waiting, "wait_samples": samples, "doctor": findings,
    }
    if workload is not None:
        result["conveyor"] = workload
    if not result["read_tps"]:
        result["pgbench_read_output"] = read_out[-2000:]
    await settle(primary, replica)
    return result


async def settle(primary: Postgres, replica: Postgres) -> None:
    """Between phases: freeze the table (no phase inherits another's unfrozen xids), replica caught up."""
    primary.psql("VACUUM (FREEZE) pgbench_accounts", DB)
    primary.psql("CHECKPOINT")
    target = primary.psql("SELECT pg_current_wal_insert_lsn()").strip()
    deadline = time.monotonic() + 120
    while replica.psql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn").strip() != "t":
        if time.monotonic() > deadline:
            raise TimeoutError("replica did not catch up")
        await asyncio.sleep(0.1)


async def run(cfg: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    primary = start_postgres("-c", "max_wal_senders=10")
    replica = redis = None
    try:
        primary.psql(f"CREATE DATABASE {DB}")
        init = await pgbench(primary, primary.port, "-i", "-q", "-s", str(cfg.scale))
        if "done" not in init:
            raise RuntimeError(init)
        replica = start_replica(primary)
        redis = start_redis()
        await settle(primary, replica)
        await pgbench(replica, replica.port, "-S", "-c", str(cfg.readers), "-j", "2", "-T", "5")  # warm-up, discarded
        scripts = {"plain": write_script(1, False), "one_savepoint": write_script(1, True)}
        for k in cfg.savepoints:
            scripts[f"updates_{k}"], scripts[f"savepoints_{k}"] = write_script(k, False), write_script(k, True)
        for name, text in scripts.items():
            (workdir / f"{name}.sql").write_text(text)
        env = {"postgresql": primary.psql("SHOW server_version").strip(), "cpus": os.cpu_count(),
               "load_average_at_start": [round(x, 2) for x in os.getloadavg()], "git_head": support._git_head()}
        plan: list[tuple[str, str, str, bool]] = [("baseline", "baseline", "plain", False), ("conveyor", "conveyor", "plain", True),
                                                  ("control", "control", "one_savepoint", True)]
        for k in cfg.savepoints:
            plan += [("updates", f"updates_{k}", f"updates_{k}", True), ("savepoints", f"savepoints_{k}", f"savepoints_{k}", True)]
        # the baseline again: how far the machine itself drifted during the run (it is shared)
        plan.append(("baseline_end", "baseline_end", "plain", False))
        phases: dict[str, Any] = {}
        for kind, name, script, long_transaction in plan:
            if kind not in cfg.phases:
                continue
            conveyor = ConveyorWorkload(primary, replica, redis, workdir / "conveyor", cfg.duration) if kind == "conveyor" else None
            phases[name] = await phase(name, cfg, primary, replica, workdir / f"{script}.sql",
                                       long_transaction=long_transaction, conveyor=conveyor)
        env["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        return {"environment": env, "phases": phases}
    finally:
        for service in (redis, replica, primary):
            if service is not None:
                service.stop()


def summarize(results: dict[str, Any], savepoints: list[int]) -> dict[str, Any]:
    phases = results["phases"]
    base = phases["baseline"]["read_tps"]
    for data in phases.values():
        data["ratio_to_baseline"] = support.ratio(data["read_tps"], base)
        # the worst 5 s of the phase: a cliff that starts late shows here before it shows in the mean
        data["trough_ratio"] = support.ratio(min(data.get("read_tps_every_5s") or [0.0]), base)
    results["goals"] = []
    if "conveyor" in phases:
        conveyor = phases["conveyor"]
        savepoints_sent = conveyor.get("conveyor", {}).get("savepoints")
        results["goals"] = [
            {"goal": "Conveyor's phase: replica read TPS vs baseline", "target": ">= 0.9",
             "measured": conveyor["ratio_to_baseline"], "passed": (conveyor["ratio_to_baseline"] or 0) >= 0.9},
            {"goal": "Conveyor's servers sent no SAVEPOINT", "target": "0", "measured": savepoints_sent,
             "passed": savepoints_sent == 0},
            {"goal": "Conveyor's phase: no Subtrans SLRU reads on the replica", "target": "0",
             "measured": conveyor["subtrans_slru_reads"], "passed": conveyor["subtrans_slru_reads"] == 0},
        ]
    if "control" in phases:
        results["control_ratio"] = phases["control"]["ratio_to_baseline"]
    if "baseline_end" in phases:
        results["baseline_drift"] = support.ratio(phases["baseline_end"]["read_tps"], base)
    results["cliff"] = []
    for k in savepoints:
        escalated, heavy = phases.get(f"savepoints_{k}"), phases.get(f"updates_{k}")
        if escalated is None:
            continue
        results["cliff"].append({
            "savepoints_per_write_transaction": k, "ratio_to_baseline": escalated["ratio_to_baseline"],
            "trough_ratio": escalated["trough_ratio"], "subtrans_slru_reads": escalated["subtrans_slru_reads"],
            "ratio_to_same_updates_without_savepoints": support.ratio(escalated["read_tps"], heavy["read_tps"]) if heavy else None,
        })
    return results


def report(results: dict[str, Any]) -> str:
    rows = [(name, d["read_tps"], d["ratio_to_baseline"], d["trough_ratio"], d["write_tps"], d["subtrans_slru_reads"],
             d["subtrans_slru_hits"], f"{d['subtrans_wait_samples']}/{d['wait_samples']}",
             " ".join(f"{s['role']}:{s['level']}" for s in d["doctor"]))
            for name, d in results["phases"].items()]
    text = support.table(rows, ["phase", "replica read tps", "ratio", "worst 5 s", "write tps", "subtrans reads", "subtrans hits",
                                "SLRU waits", "doctor"])
    goals = support.table([(g["goal"], g["target"], g["measured"], g["passed"]) for g in results["goals"]],
                          ["goal", "target", "measured", "passed"]) if results["goals"] else "(no goals: the conveyor phase was not run)"
    return text + "\n\n" + goals


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=30, help="seconds per phase")
    parser.add_argument("--scale", type=int, default=2, help="pgbench scale (100,000 accounts each)")
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--write-rate", type=int, default=200, help="write transactions per second, at most")
    parser.add_argument("--savepoints", type=_ints, default=[70],
                        help="savepoints per write transaction in the escalated phases, comma-separated (e.g. 64,65)")
    parser.add_argument("--phases", type=lambda text: text.split(","), default=list(PHASES),
                        help=f"which phases to run, comma-separated, of {','.join(PHASES)} (baseline always runs)")
    parser.add_argument("--output", type=Path, default=support.RESULTS / "nessie.json")
    cfg = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="conveyor-nessie-") as tmp:
        cfg.phases = ["baseline", *(p for p in cfg.phases if p != "baseline")]
        results = summarize(asyncio.run(run(cfg, Path(tmp))), cfg.savepoints)
    results["settings"] = {k: str(v) for k, v in vars(cfg).items()}
    support.write_results(cfg.output, results)
    print(report(results))
    return 0 if all(goal["passed"] for goal in results["goals"]) else 1


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
