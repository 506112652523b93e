"""Two server processes, 50 runners, 2,000 jobs: every job is handed out exactly once and succeeds.

The runners alternate between the servers on every request, acknowledge and finish each job on
the other server than the one that handed it out, and start polling before the pipelines exist,
so most jobs reach a runner through a long poll woken by the other process.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from tests.plugins.cluster import start_servers  # noqa: F401 (fixture)
from tests.plugins.live import ROOT_TOKEN
from tests.plugins.repos import make_repo
from tests.plugins.runner_clients import RunnerClient

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

PIPELINES = 40
JOBS_PER_PIPELINE = 50  # 2,000 jobs; one stage each (finishing a job re-reads its pipeline's jobs)
RUNNERS = 50
IDLE_LIMIT = 15.0  # no job handed out anywhere for this long, and all pipelines exist: done
DEADLINE = 150.0


def ci_yaml(jobs: int) -> str:
    lines = ["stages: [test]"]
    for index in range(jobs):
        lines += [f"job-{index:04d}:", "  stage: test", "  script: [\"true\"]"]
    return "\n".join(lines) + "\n"


def trace_of(job_id: int, runner: int) -> bytes:
    return f"job {job_id} ran on runner {runner}\n".encode()


class Ledger:
    """What the runners saw, shared by all of them (one event loop, no locks needed)."""

    def __init__(self, expected_total: int) -> None:
        self.expected_total = expected_total
        self.received: dict[int, list[int]] = defaultdict(list)  # job id -> runner indexes
        self.finished: dict[int, int] = {}  # job id -> final PUT status
        self.last_progress = time.monotonic()
        self.pipelines_created = asyncio.Event()
        self.all_finished = asyncio.Event()

    def idle(self) -> bool:
        return self.pipelines_created.is_set() and time.monotonic() - self.last_progress > IDLE_LIMIT


async def run_runner(index: int, client: RunnerClient, urls: list[str], ledger: Ledger, deadline: float) -> None:
    turn = index
    while not ledger.all_finished.is_set() and time.monotonic() < deadline:
        here, there = urls[turn % 2], urls[(turn + 1) % 2]
        turn += 1
        job = await client.request_job(here)
        if job is None:
            if ledger.idle():
                return
            await asyncio.sleep(0.2)  # a server that does not hold the request answers at once
            continue
        ledger.received[job.id].append(index)
        ledger.last_progress = time.monotonic()
        await client.acknowledge(there, job)
        trace = trace_of(job.id, index)
        patched = await client.patch_trace(here, job, trace)
        assert patched.status_code == 202, (job.id, patched.status_code, patched.text)
        final = await client.finish(there, job, trace)
        ledger.finished[job.id] = final.status_code
        if len(ledger.finished) >= ledger.expected_total:
            ledger.all_finished.set()


async def create_pipelines(urls: list[str], project_id: int, ledger: Ledger) -> list[int]:
    ids = []
    async with httpx.AsyncClient(headers={"PRIVATE-TOKEN": ROOT_TOKEN}, timeout=60) as http:
        for index in range(PIPELINES):
            response = await http.post(f"{urls[index % 2]}/api/v4/projects/{project_id}/pipeline")
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    ledger.pipelines_created.set()
    return ids


async def test_two_servers_hand_out_every_job_exactly_once(start_servers, tmp_path: Path) -> None:  # noqa: F811
    servers = start_servers(2, long_poll_timeout=2)
    urls = [server.url for server in servers]
    make_repo(tmp_path / "repo", ci_yaml(JOBS_PER_PIPELINE))
    async with httpx.AsyncClient(headers={"PRIVATE-TOKEN": ROOT_TOKEN}, timeout=60) as admin:
        project = (await admin.post(f"{urls[0]}/api/v4/projects", json={"source": str(tmp_path / "repo")})).json()
        tokens = [
            (await admin.post(f"{urls[i % 2]}/api/v4/user/runners", json={"description": f"r{i}"})).json()["token"]
            for i in range(RUNNERS)
        ]

    ledger = Ledger(PIPELINES * JOBS_PER_PIPELINE)
    clients = [RunnerClient(token, f"s_concurrency{i:04d}", urls, timeout=30) for i, token in enumerate(tokens)]
    deadline = time.monotonic() + DEADLINE
    try:
        async with asyncio.TaskGroup() as group:
            for index, client in enumerate(clients):
                group.create_task(run_runner(index, client, urls, ledger, deadline))
            pipelines = group.create_task(create_pipelines(urls, project["id"], ledger))
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))

    async with httpx.AsyncClient(headers={"PRIVATE-TOKEN": ROOT_TOKEN}, timeout=60) as admin:
        jobs = []
        for pipeline_id in pipelines.result():
            url = f"{urls[pipeline_id % 2]}/api/v4/projects/{project['id']}/pipelines/{pipeline_id}"
            listed = (await admin.get(url + "/jobs", params={"per_page": 100})).json()  # 50 jobs: one page
            jobs += listed
            status = (await admin.get(url)).json()["status"]
            assert status == "success", (
                pipeline_id, status, [(j["id"], j["status"], ledger.finished.get(j["id"])) for j in listed if j["status"] != "success"]
            )
    expected = {job["id"] for job in jobs}
    assert len(expected) == PIPELINES * JOBS_PER_PIPELINE
    twice = {job_id: runners for job_id, runners in ledger.received.items() if len(runners) > 1}
    assert not twice, f"{len(twice)} jobs handed out more than once, e.g. {list(twice.items())[:5]}"
    assert not expected - set(ledger.received), f"{len(expected - set(ledger.received))} jobs never handed out"
    assert not set(ledger.received) - expected, "runners received jobs that are not in the pipelines"
    assert {status for status in ledger.finished.values()} == {200}
    assert {job["status"] for job in jobs} == {"success"}
    # the log went to one server and the final update to the other: both saw the same bytes
    wrong_size = [job["id"] for job in jobs if job["trace_size"] != len(trace_of(job["id"], ledger.received[job["id"]][0]))]
    assert not wrong_size, f"stored log size differs from what the runner sent: {wrong_size[:5]}"
    for server in servers:
        assert server.savepoints() == 0, f"{server.url} sent a SAVEPOINT"
