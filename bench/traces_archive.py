"""Trace benchmark part (c): archiving a 1 GiB live log, wall time and peak memory growth.

``measure(svc, quick)`` builds one finished job whose live log is 1 GiB (64 MiB with ``quick``),
written through the server's own ``TraceStore`` (``build_services``, so whatever the live store
is today) in 1 MiB appends of log-like text. Then, each in a fresh child process so its memory
is its own:

- **plain copy** (the baseline): the same bytes streamed from the live store into the same
  object store under another key, nothing else: no CRC, no re-read, no bookkeeping (run twice,
  the faster counts: the archive after it finds the same warm caches);
- **archive**: ``TraceArchiver.archive(job_id)``, the real thing: lease, stream + CRC, put,
  re-read the stored object to verify size and CRC-32, compare with the runner's checksum, mark
  archived and delete the chunks in one transaction.

Both run against the filesystem store (the default); the archive also against S3 (a local moto
server, ``tests/plugins/s3.py``), on a twin job whose chunks are copied into rows (filling a
GiB through the live store takes minutes; segment files live beside a local store only). Memory: the child samples its own RSS (``/proc/self/status``)
every 10 ms while working; growth = peak during the work - RSS just before it (after imports and
connecting). ``ru_maxrss`` is reported too. The goal is the issue's: under 100 MB of growth,
whatever the log's size (stream, never load a log whole).

Run standalone with ``./dev bench traces_archive [--quick]``; ``bench/traces.py`` calls
``measure``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import support  # noqa: E402

MIB = 1024 * 1024
GOAL_RSS_MB = 100.0
APPEND = MIB  # bytes per TraceStore.append while filling


def _settings(database_url: str, redis_url: str, workdir: Path, store: dict[str, Any]) -> Any:
    from conveyor.server.settings import ServerSettings

    # the live store a server uses on a Redis with AOF (the bench's Redis has it): hot chunks in
    # Redis, sealed when full into segment files beside a local object store, into rows with S3
    return ServerSettings(
        database_url=database_url, redis_url=redis_url, data_dir=workdir / "data", trace_store="redis", **store
    )


# --- the child process: one measured operation -------------------------------------------------


class _RssSampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = _rss()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.01):
            self.peak = max(self.peak, _rss())

    def stop(self) -> int:
        self._done.set()
        self.join()
        return max(self.peak, _rss())


def _rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def _child(mode: str, settings_json: str, job_id: int) -> dict[str, Any]:
    from conveyor.server.app import build_services
    from conveyor.server.settings import ServerSettings

    raw = json.loads(settings_json)
    settings = ServerSettings(**{**raw, "data_dir": Path(raw["data_dir"])})
    services = build_services(settings)
    await services.traces.size(job_id)  # connect first: the pool is not what we measure
    await services.objects.size("warm-up")
    size = await services.traces.size(job_id)
    before, maxrss_before = _rss(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    sampler = _RssSampler()
    sampler.start()
    started = time.perf_counter()
    if mode == "copy":
        written = await services.objects.put(f"bench/{job_id}/copy.log", _live_pieces(services.traces, job_id, size))
        ok = written == size
    else:
        ok = await services.archiver.archive(job_id)
    seconds = time.perf_counter() - started
    peak = sampler.stop()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    await services.redis.aclose()
    await services.engine.dispose()
    return {
        "ok": bool(ok), "bytes": size, "seconds": round(seconds, 3),
        "rss_before_mb": round(before / MIB, 1), "rss_growth_mb": round((peak - before) / MIB, 1),
        "ru_maxrss_growth_mb": round(max(0, maxrss - maxrss_before) / MIB, 1),
    }


async def _live_pieces(live: Any, job_id: int, size: int):  # noqa: ANN202
    position = 0
    while position < size:
        piece = await live.read(job_id, position, min(MIB, size - position))
        if not piece:
            raise RuntimeError(f"live log ends at {position} of {size}")
        position += len(piece)
        yield piece


def _run_child(mode: str, settings: Any, job_id: int) -> dict[str, Any]:
    raw = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(settings).items()}
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--settings", json.dumps(raw), "--job", str(job_id)],
        capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": str(support.ROOT)},
    )
    if out.returncode != 0:
        raise RuntimeError(f"{mode} child failed:\n{out.stderr[-4000:]}")
    for line in out.stdout.splitlines():
        if "trace_archived" in line:
            support.log(f"  {line.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- setup: a finished job with a big live log -------------------------------------------------


async def _job_with_log(settings: Any, size: int) -> int:
    """A finished job whose live log is ``size`` bytes of log-like text, with the runner's checksum."""
    import sqlalchemy as sa

    from conveyor.server.app import build_services

    services = build_services(settings)
    try:
        async with services.engine.begin() as conn:
            project = (await conn.execute(sa.text(
                "INSERT INTO projects (name, source) VALUES ('bench', '/dev/null') RETURNING id"))).scalar()
            pipeline = (await conn.execute(sa.text(
                "INSERT INTO pipelines (project_id, ref, sha, status) VALUES (:p, 'main', 'f00', 'running') RETURNING id"),
                {"p": project})).scalar()
            job_id = (await conn.execute(sa.text(
                "INSERT INTO jobs (pipeline_id, project_id, name, stage, stage_idx, status, spec, started_at)"
                " VALUES (:pl, :p, 'big-log', 'test', 0, 'running', '{}'::jsonb, now()) RETURNING id"),
                {"pl": pipeline, "p": project})).scalar()
        rng = random.Random(42)
        crc = offset = 0
        while offset < size:
            piece = _log_text(rng, min(APPEND, size - offset))
            offset = await services.traces.append(job_id, offset, piece)
            crc = zlib.crc32(piece, crc)
            if offset % (128 * MIB) == 0:
                support.log(f"  live log {offset // MIB} MiB")
        await services.traces.persist(job_id)  # as the final PUT does before a job may finish
        async with services.engine.begin() as conn:
            await conn.execute(sa.text(
                "UPDATE jobs SET status = 'success', finished_at = now(), trace_checksum = :c WHERE id = :id"),
                {"c": f"crc32:{crc:08x}", "id": job_id})
        return job_id
    finally:
        await services.redis.aclose()
        await services.engine.dispose()


def _log_text(rng: random.Random, size: int) -> bytes:
    """Lines of printable noise: about as compressible as a busy build log (base64 of random bytes)."""
    text = base64.encodebytes(rng.randbytes(size * 3 // 4 + 3))
    return text[:size]


# --- the measurement ---------------------------------------------------------------------------


async def measure(svc: support.Services, quick: bool, size_mib: int | None = None) -> dict[str, Any]:
    size = (size_mib or (64 if quick else 1024)) * MIB
    from tests.plugins.s3 import S3Server

    svc.flush_redis()
    database_url = svc.fresh_database("bench_traces_archive")
    filesystem = _settings(database_url, svc.redis.url, svc.workdir, {"object_store_url": (svc.workdir / "objects").as_uri()})
    support.log(f"traces_archive: filling a {size // MIB} MiB live log")
    job_id = await _job_with_log(filesystem, size)
    twin = await _clone_job(filesystem, job_id)  # the same log again, for the S3 archive
    runs: dict[str, dict[str, Any]] = {}
    support.log("traces_archive: plain copy to the filesystem (baseline)")
    copies = [_run_child("copy", filesystem, job_id) for _ in range(2)]  # the faster: warm caches, as the archive has
    runs["copy/filesystem"] = min(copies, key=lambda run: run["seconds"])
    support.log("traces_archive: archive to the filesystem")
    runs["archive/filesystem"] = _run_child("archive", filesystem, job_id)
    s3 = S3Server(svc.workdir / "moto.log")
    s3.start()
    try:
        support.log("traces_archive: archive to S3 (moto)")
        store = s3.settings("bench", timeout=60, retry_timeout=120)  # moto holding a GiB is slow
        runs["archive/s3"] = _run_child("archive", _settings(database_url, svc.redis.url, svc.workdir, store), twin)
    finally:
        s3.stop()
    return _report(runs, size)


async def _clone_job(settings: Any, job_id: int) -> int:
    """A second finished job with the same durable log, its chunks as rows with their bytes (the
    S3 archive runs with rows: segment files live beside a local object store only). The chunks
    are read through the live store's own ``DurableChunks`` and written 64 at a time."""
    import sqlalchemy as sa

    from conveyor.server.app import build_services
    from conveyor.server.db import queries

    services = build_services(settings)
    durable = services.traces.durable
    try:
        async with services.engine.begin() as conn:
            twin = (await conn.execute(sa.text(
                "INSERT INTO jobs (pipeline_id, project_id, name, stage, stage_idx, status, spec, started_at,"
                " finished_at, trace_size, trace_crc32, trace_checksum)"
                " SELECT pipeline_id, project_id, name || '-twin', stage, stage_idx, status, spec, started_at,"
                " finished_at, trace_size, trace_crc32, trace_checksum FROM jobs WHERE id = :id RETURNING id"),
                {"id": job_id})).scalar()
        index = 0
        while rows := await durable.read(job_id, index, 64):
            chunks = dict(rows)
            async with services.engine.begin() as conn:
                await queries.traces.seal_chunks(
                    conn, twin, chunks, {i: zlib.crc32(data) for i, data in chunks.items()}, durable.chunk_size
                )
            index = rows[-1][0] + 1
        return twin
    finally:
        await services.redis.aclose()
        await services.engine.dispose()


def _report(runs: dict[str, dict[str, Any]], size: int) -> dict[str, Any]:
    copy = runs["copy/filesystem"]
    rows, goals = [], []
    for name, run in runs.items():
        run["mib_per_s"] = round(run["bytes"] / MIB / run["seconds"], 1) if run["seconds"] else None
        run["time_vs_copy"] = support.ratio(run["seconds"], copy["seconds"])
        rows.append([name, run["bytes"] // MIB, run["seconds"], run["mib_per_s"], run["rss_growth_mb"],
                     run["ru_maxrss_growth_mb"], run["time_vs_copy"], run["ok"]])
        if name.startswith("archive/"):
            goals.append({
                "goal": f"{name}: peak RSS growth archiving a {size // MIB} MiB log",
                "target": f"< {GOAL_RSS_MB:.0f} MB",
                "measured": run["rss_growth_mb"],
                "passed": bool(run["ok"]) and run["rss_growth_mb"] < GOAL_RSS_MB,
            })
    return {
        "figures": {"log_bytes": size, **{name.replace("/", "_"): run for name, run in runs.items()}},
        "goals": goals,
        "table": {
            "header": ["phase", "MiB", "seconds", "MiB/s", "RSS growth MB", "ru_maxrss growth MB", "time vs copy", "ok"],
            "rows": rows,
        },
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 64 MiB log instead of 1 GiB")
    parser.add_argument("--size-mib", type=int, help="another log size (the result file is not written)")
    parser.add_argument("--child", choices=["copy", "archive"], help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    parser.add_argument("--job", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(asyncio.run(_child(args.child, args.settings, args.job))))
        return
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-archive-") as tmp, support.services(Path(tmp)) as svc:
        environment = support.environment(svc)
        results = asyncio.run(measure(svc, args.quick, args.size_mib))
    print(support.table(results["table"]["rows"], results["table"]["header"]))
    for goal in results["goals"]:
        print(f"{'PASS' if goal['passed'] else 'FAIL'}  {goal['goal']}: {goal['measured']} MB ({goal['target']})")
    if args.size_mib:
        return
    name = "traces_archive-quick" if args.quick else "traces_archive"
    support.write_results(support.RESULTS / f"{name}.json", {"environment": environment, **results})


if __name__ == "__main__":
    main(sys.argv[1:])
