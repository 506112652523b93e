"""Data and actors for ``bench/dispatch.py``: pending jobs in bulk, runner fleets, procrastinate workers.

Pending jobs are written straight into ``jobs`` and ``pending_jobs`` with one ``INSERT … SELECT
generate_series`` per chunk (the server's own enqueue would take minutes for 100,000 jobs);
their ``spec`` is a real ``JobSpec`` built by ``conveyor.pipeline`` from a one-job YAML, so the
server builds real payloads for them. Projects and runners are created through the API.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import support
from tests.plugins.repos import make_repo
from tests.plugins.runner_clients import Assigned, RunnerClient

JOB_YAML = 'bench-job:\n  stage: test\n  script: ["true"]\n'
BACKLOG_TAG = "bench-backlog"  # no benchmark runner has it, so backlog jobs are never theirs
CHUNK = 20_000

_INSERT_PENDING = """
WITH inserted AS (
    INSERT INTO jobs (pipeline_id, project_id, name, stage, stage_idx, status, spec, tags, queued_at, updated_at)
    SELECT $1, $2, $3::text || g::text, $4, $5, 'pending',
           jsonb_set(jsonb_set($6::jsonb, '{name}', to_jsonb($3::text || g::text)), '{tags}', to_jsonb($7::text[])),
           $7::text[], now(), now()
    FROM generate_series($8::int, $9::int) AS g
    RETURNING id, project_id, tags
)
INSERT INTO pending_jobs (job_id, project_id, tags)
SELECT id, project_id, tags FROM inserted
"""


def job_spec() -> dict[str, Any]:
    from conveyor import ciconfig, pipeline

    return pipeline.build(ciconfig.load(JOB_YAML))[0].model_dump(mode="json")


def asyncpg_dsn(url: str) -> str:
    return url  # tests/plugins/services.py hands out plain postgresql:// URLs


def make_source(workdir: Path) -> Path:
    """A git repository whose pipeline is one job (what the pickup phases enqueue)."""
    repo = workdir / "repo"
    if not repo.exists():
        make_repo(repo, JOB_YAML)
    return repo


async def create_project(admin: httpx.AsyncClient, source: Path, name: str) -> dict[str, Any]:
    response = await admin.post("/projects", json={"source": str(source), "name": name})
    response.raise_for_status()
    return response.json()


async def create_runner_tokens(admin: httpx.AsyncClient, count: int) -> list[str]:
    tokens = []
    for index in range(count):
        response = await admin.post("/user/runners", json={"description": f"bench-{index}"})
        response.raise_for_status()
        tokens.append(response.json()["token"])
    return tokens


async def insert_pending(database_url: str, project_id: int, count: int, *, tags: list[str], prefix: str) -> int:
    """``count`` pending jobs in a new pipeline of ``project_id``; returns the pipeline id."""
    spec = job_spec()
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        sha = "0" * 40
        pipeline_id = await conn.fetchval(
            "INSERT INTO pipelines (project_id, ref, sha, status) VALUES ($1, 'main', $2, 'running') RETURNING id",
            project_id, sha,
        )
        for first in range(1, count + 1, CHUNK):
            last = min(count, first + CHUNK - 1)
            await conn.execute(
                _INSERT_PENDING, pipeline_id, project_id, prefix, spec["stage"], spec["stage_idx"],
                json.dumps(spec), tags, first, last,
            )
        await conn.execute("VACUUM ANALYZE jobs")
        await conn.execute("VACUUM ANALYZE pending_jobs")
    finally:
        await conn.close()
    return pipeline_id


async def queued_at(database_url: str, job_ids: list[int]) -> dict[int, float]:
    """Each job's ``queued_at`` as epoch seconds (the moment it became pending, DB clock)."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT id, extract(epoch FROM queued_at)::float8 AS t FROM jobs WHERE id = ANY($1::bigint[])", job_ids
        )
    finally:
        await conn.close()
    return {row["id"]: row["t"] for row in rows}


@dataclass
class FleetLog:
    """What a runner fleet saw during one phase."""

    assigned: list[Assigned] = field(default_factory=list)
    empty: int = 0  # 204 answers
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    first_empty: set[int] = field(default_factory=set)  # runners that have had a 204 (now long-polling)


class Fleet:
    """``len(tokens)`` runners, runner ``i`` on server ``i % len(urls)``, each one request at a time.

    A runner loops like gitlab-runner: ``POST /jobs/request`` (echoing ``last_update``); on 201 the
    acknowledgement ``PUT state=running`` (when ``ack``) and at once the next request; on 204 wait
    ``check_interval`` before asking again. ``stop()`` cancels requests still held by the server.
    """

    def __init__(self, urls: list[str], tokens: list[str], *, ack: bool, check_interval: float, timeout: float) -> None:
        self.urls = urls
        self.clients = [RunnerClient(token, f"s_bench{i:05d}", [urls[i % len(urls)]], timeout=timeout) for i, token in enumerate(tokens)]
        self.ack = ack
        self.check_interval = check_interval
        self.log = FleetLog()
        self.on_assigned: list[Any] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.released_at: float | None = None

    def start(self) -> None:
        self.released_at = time.time()
        self._tasks = [asyncio.create_task(self._run(i, client)) for i, client in enumerate(self.clients)]

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(client.aclose() for client in self.clients), return_exceptions=True)

    async def _run(self, index: int, client: RunnerClient) -> None:
        server = self.urls[index % len(self.urls)]
        while not self._stop.is_set():
            self.log.requests += 1
            try:
                job = await client.request_job(server)
                if job is not None:
                    self.log.assigned.append(job)
                    for callback in self.on_assigned:
                        callback(job)
                    if self.ack:
                        await client.acknowledge(server, job)
                    continue
                self.log.empty += 1
                self.log.first_empty.add(index)
            except (httpx.HTTPError, RuntimeError) as exc:
                if len(self.log.errors) < 1000:
                    self.log.errors.append(f"{type(exc).__name__}: {exc}"[:300])
            try:
                await asyncio.wait_for(self._stop.wait(), self.check_interval)
            except TimeoutError:
                pass


class ProcrastinateWorkers:
    """``count`` procrastinate worker processes (``bench/procrastinate_worker.py``), started together."""

    # imported rather than run as a script: procrastinate warns about an App in ``__main__``
    LAUNCH = "import sys; sys.path.insert(0, sys.argv[1]); from bench import procrastinate_worker as w; w.run(sys.argv[2:])"

    def __init__(self, database_url: str, count: int, concurrency: int, pool_size: int, mode: str) -> None:
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-c", self.LAUNCH, str(support.ROOT), database_url, str(concurrency), str(pool_size), mode],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )
            for _ in range(count)
        ]
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"procrastinate worker did not start: {line!r}")
        self.released_at: float | None = None

    def release(self) -> None:
        self.released_at = time.time()
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()

    def finish(self, timeout: float) -> list[tuple[int, float]]:
        """Close stdin (ends ``listen`` workers), wait, and collect (job id, start time) pairs."""
        started: list[tuple[int, float]] = []
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            try:  # communicate() closes stdin first: EOF ends a ``listen`` worker
                out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            for line in out.splitlines():
                if line.startswith("{"):
                    started += [(int(job_id), float(at)) for job_id, at in json.loads(line)["started"]]
        return started

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
