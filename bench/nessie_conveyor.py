"""Conveyor's real workload for bench/nessie: a server and a shell runner on the bench's primary
(listings read from its replica), pipelines of jobs streaming logs, a client reading them back."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from bench import support
from tests.plugins.cluster import server_env, start_cluster
from tests.plugins.live import ROOT_TOKEN, RunnerProcess
from tests.plugins.repos import make_repo
from tests.plugins.services import Postgres, RedisServer

# two jobs per pipeline, each streaming 60 lines over about 6 s
CI = "".join(
    f"stream{i}:\n  script:\n    - 'for n in $(seq 1 60); do echo \"job {i} line $n $(date +%s%N)\"; sleep 0.1; done'\n"
    for i in range(2)
)
DATABASE = "conveyor"


class ConveyorWorkload:
    def __init__(self, primary: Postgres, replica: Postgres, redis: RedisServer, workdir: Path, duration: float,
                 pipeline_every: float = 3.0) -> None:
        self.primary, self.replica, self.redis = primary, replica, redis
        self.workdir = workdir
        self.duration = duration
        self.pipeline_every = pipeline_every
        self.counts = {"pipelines": 0, "listings": 0, "log_reads": 0, "log_bytes_read": 0}
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.primary.psql(f"CREATE DATABASE {DATABASE}")
        await _replayed(self.replica, DATABASE)
        env = server_env(self.workdir, self.primary.url(DATABASE), self.redis.url, savepoint_policy="raise",
                         trace_update_interval=1, database_replica_urls=self.replica.url(DATABASE))
        self.server = (await asyncio.to_thread(start_cluster, env, 1, self.workdir))[0]
        self.admin = httpx.AsyncClient(base_url=self.server.url + "/api/v4", headers={"PRIVATE-TOKEN": ROOT_TOKEN}, timeout=60)
        token = (await self.admin.post("/user/runners", json={"description": "nessie"})).json()["token"]
        self.runner = RunnerProcess(self.server.url, token, self.workdir / "builds", self.workdir / "runner.log")
        make_repo(self.workdir / "repo", CI)
        self.project = (await self.admin.post("/projects", json={"source": str(self.workdir / "repo")})).json()["id"]
        self._tasks = [asyncio.create_task(self._create()), asyncio.create_task(self._read())]

    async def _create(self) -> None:
        while True:
            answer = await self.admin.post(f"/projects/{self.project}/pipeline")
            if answer.status_code == 201:
                self.counts["pipelines"] += 1
            await asyncio.sleep(self.pipeline_every)

    async def _read(self) -> None:
        """What a user with the pipeline page open does: list pipelines and jobs, read a log."""
        while True:
            pipelines = (await self.admin.get(f"/projects/{self.project}/pipelines")).json()
            self.counts["listings"] += 1
            if pipelines:
                jobs = (await self.admin.get(f"/projects/{self.project}/pipelines/{pipelines[0]['id']}/jobs", params={"per_page": 100})).json()
                self.counts["listings"] += 1
                for job in jobs[:1]:
                    log = await self.admin.get(f"/projects/{self.project}/jobs/{job['id']}/trace")
                    self.counts["log_reads"] += 1
                    self.counts["log_bytes_read"] += len(log.content)
            await asyncio.sleep(1.0)

    async def stop(self) -> dict[str, Any]:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        statuses: dict[str, int] = {}
        for pipeline in (await self.admin.get(f"/projects/{self.project}/pipelines")).json():
            for job in (await self.admin.get(f"/projects/{self.project}/pipelines/{pipeline['id']}/jobs", params={"per_page": 100})).json():
                statuses[job["status"]] = statuses.get(job["status"], 0) + 1
        metrics = (await self.admin.get(self.server.url + "/metrics")).text
        await self.admin.aclose()
        self.runner.stop()
        savepoints = self.server.savepoints()
        transactions = _metric(metrics, "conveyor_db_transactions_total")
        self.server.stop()
        support.log(f"conveyor workload: {self.counts}, jobs {statuses}")
        return {**self.counts, "jobs": statuses, "savepoints": savepoints, "server_transactions": transactions,
                "replica_reads_note": "listings and the archived-log lookup go to the replica (CONVEYOR_DATABASE_REPLICA_URLS)"}


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


async def _replayed(replica: Postgres, database: str) -> None:
    deadline = time.monotonic() + 60
    while replica.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{database}'").strip() != "1":
        if time.monotonic() > deadline:
            raise TimeoutError(f"replica never saw {database}")
        await asyncio.sleep(0.1)
