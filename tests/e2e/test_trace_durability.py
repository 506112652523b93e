"""Issue 4's acceptance: a job's log is byte-identical after PATCHes spread over three server
processes, a server SIGKILLed mid-stream, and Redis restarted mid-job (hot chunk lost, resent).

Each test ends by waiting for the archive and comparing the archived log, byte for byte, with what
the job printed, and its CRC-32 with the runner's checksum.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import zlib
from pathlib import Path

import httpx
import pytest

from tests.plugins.cluster import server_env, start_cluster, start_servers  # noqa: F401 (fixture)
from tests.plugins.live import ROOT_TOKEN
from tests.plugins.repos import make_repo
from tests.plugins.runner_clients import Assigned, RunnerClient
from tests.plugins.services import start_redis

pytestmark = pytest.mark.e2e

CHUNK = 128 * 1024


async def _job(urls: list[str], source: Path) -> tuple[httpx.AsyncClient, RunnerClient, Assigned, dict]:
    admin = httpx.AsyncClient(base_url=urls[0] + "/api/v4", headers={"PRIVATE-TOKEN": ROOT_TOKEN}, timeout=30)
    project = (await admin.post("/projects", json={"source": str(source)})).raise_for_status().json()
    token = (await admin.post("/user/runners", json={})).raise_for_status().json()["token"]
    (await admin.post(f"/projects/{project['id']}/pipeline")).raise_for_status()
    client = RunnerClient(token, "durability", urls, timeout=30)
    job = None
    while job is None:
        job = await client.request_job(urls[0])
    await client.acknowledge(urls[-1], job)
    return admin, client, job, project


def _log(size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    lines = []
    while sum(map(len, lines)) < size:
        lines.append(f"line {len(lines)} {rng.getrandbits(64):x} ".encode() + bytes(rng.randrange(256) for _ in range(40)) + b"\n")
    return b"".join(lines)[:size]


async def _stream(client: RunnerClient, job: Assigned, data: bytes, urls: list[str], *, kill=None) -> int:  # noqa: ANN001
    """PATCH ``data`` round-robin over ``urls`` as runners behind a load balancer would, with
    random sizes and the odd resend of bytes already sent; a server that refuses connections is
    skipped. Returns how many 416 resyncs happened."""
    rng = random.Random(11)
    offset, turn, resyncs = 0, 0, 0
    while offset < len(data):
        url = urls[turn % len(urls)]
        turn += 1
        if kill is not None and offset >= len(data) // 2:
            kill()
            kill = None
        size = rng.choice([1, 700, 4096, 20_000, 65_536, 150_000])
        start = offset - rng.randint(1, min(3000, offset)) if turn % 5 == 0 and offset else offset
        try:
            response = await client.patch_trace(url, job, data[start : start + size], start)
        except httpx.TransportError:
            continue  # that server is gone: the next one takes the PATCH
        server_end = int(response.headers["Range"].split("-")[1])
        if response.status_code == 202:
            assert server_end == start + len(data[start : start + size])
        else:
            assert response.status_code == 416 and server_end == offset, response.text
            resyncs += 1
        offset = server_end
    return resyncs


async def _archived(admin: httpx.AsyncClient, project: dict, job_id: int, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            info = (await admin.get(f"/projects/{project['id']}/jobs/{job_id}")).json()
        except httpx.TransportError:
            info = {}
        if info.get("trace_archived"):
            return info
        await asyncio.sleep(0.3)
    raise TimeoutError(f"job {job_id}'s log was not archived in {timeout} s")


async def _assert_archived_log(admin: httpx.AsyncClient, project: dict, job: Assigned, data: bytes) -> None:
    info = await _archived(admin, project, job.id)
    stored = (await admin.get(f"/projects/{project['id']}/jobs/{job.id}/trace")).content
    assert len(stored) == len(data) and stored == data
    assert info["trace_checksum"] == f"crc32:{zlib.crc32(data):08x}" == f"crc32:{zlib.crc32(stored):08x}"


async def test_three_servers_take_patches_for_one_job_round_robin(start_servers, tmp_path: Path) -> None:  # noqa: ANN001, F811
    make_repo(tmp_path / "repo", "log:\n  script: [echo]\n")
    urls = [server.url for server in start_servers(3)]
    admin, client, job, project = await _job(urls, tmp_path / "repo")
    data = _log(5 * CHUNK + 12345, seed=1)  # several sealed chunks and a partial last one
    resyncs = await _stream(client, job, data, urls)
    assert resyncs > 0  # the resends were refused with the server's offset, not stored twice
    final = await client.finish(urls[1], job, data)
    assert final.status_code == 200
    await _assert_archived_log(admin, project, job, data)
    await asyncio.gather(admin.aclose(), client.aclose())


async def test_a_server_sigkilled_mid_stream_loses_nothing(start_servers, tmp_path: Path) -> None:  # noqa: ANN001, F811
    make_repo(tmp_path / "repo", "log:\n  script: [echo]\n")
    servers = start_servers(3)
    urls = [server.url for server in servers]
    admin, client, job, project = await _job(urls, tmp_path / "repo")
    data = _log(4 * CHUNK + 999, seed=2)
    await _stream(client, job, data, urls, kill=servers[1].kill)
    final = await client.finish(urls[2], job, data)
    assert final.status_code == 200
    await _assert_archived_log(admin, project, job, data)
    await asyncio.gather(admin.aclose(), client.aclose())


SLOW = """
slow:
  script:
    - for i in $(seq 1 80); do echo "line $i $(printf 'x%.0s' $(seq 1 300))" | tee -a "$CI_PROJECT_DIR/../printed-$CI_JOB_ID.txt"; sleep 0.1; done
"""


def test_redis_restarted_mid_job_the_runner_resends_the_lost_hot_chunk(  # noqa: ANN001
    database_url: str, start_runner, tmp_path: Path
) -> None:
    """Redis without persistence (trace_redis_volatile_ok) dies mid-job and comes back empty: the
    live log's hot bytes are gone, the server falls back to its durable size, answers 416, and
    the runner resends from its spool. The archived log is still exactly what the job printed."""
    redis = start_redis(appendonly=False)
    env = server_env(tmp_path, database_url, redis.url, savepoint_policy="raise", trace_update_interval=1,
                     trace_store="redis", trace_redis_volatile_ok="true", trace_chunk_size=8192)
    (tmp_path / "cluster").mkdir()
    (server,) = start_cluster(env, 1, tmp_path / "cluster")
    try:
        make_repo(tmp_path / "repo", SLOW)
        admin = httpx.Client(base_url=server.url + "/api/v4", headers={"PRIVATE-TOKEN": ROOT_TOKEN}, timeout=30)
        project = admin.post("/projects", json={"source": str(tmp_path / "repo")}).raise_for_status().json()
        runner = start_runner(server.url, admin.post("/user/runners", json={}).raise_for_status().json()["token"])
        pipeline = admin.post(f"/projects/{project['id']}/pipeline").raise_for_status().json()
        deadline = time.monotonic() + 60
        while True:  # mid-job, with some bytes sealed (8 KiB chunks) and some only hot in Redis
            jobs = admin.get(f"/projects/{project['id']}/pipelines/{pipeline['id']}/jobs").json()
            # 2 chunks sealed and 1000 bytes hot: ~17 KiB of the ~25 KiB log, ~2.5 s of printing to go
            # (at 3 chunks + 1000 the job was all but done: only the spurious restore of every
            # job's first PATCH, fixed in issue 24, made the check below pass)
            if jobs and jobs[0]["trace_size"] > 2 * 8192 + 1000:
                break
            assert time.monotonic() < deadline, "the job never started logging"
            time.sleep(0.1)
        port = redis.port
        redis.stop()
        time.sleep(1.0)
        redis = start_redis(port, appendonly=False)  # back, empty
        deadline = time.monotonic() + 120
        while (state := admin.get(f"/projects/{project['id']}/pipelines/{pipeline['id']}").json())["status"] not in {"success", "failed"}:
            assert time.monotonic() < deadline
            time.sleep(0.3)
        job = admin.get(f"/projects/{project['id']}/pipelines/{pipeline['id']}/jobs").json()[0]
        assert state["status"] == "success", job
        deadline = time.monotonic() + 60
        while not admin.get(f"/projects/{project['id']}/jobs/{job['id']}").json()["trace_archived"]:
            assert time.monotonic() < deadline, "never archived"
            time.sleep(0.3)
        log = admin.get(f"/projects/{project['id']}/jobs/{job['id']}/trace").content
        printed = next(runner.builds_dir.rglob(f"printed-{job['id']}.txt")).read_bytes()
        assert printed.count(b"\n") == 80 and printed in log
        assert admin.get(f"/projects/{project['id']}/jobs/{job['id']}").json()["trace_checksum"] == f"crc32:{zlib.crc32(log):08x}"
        restored = re.findall(rb"trace_restored_from_durable\s+job_id=\d+ size=(\d+)", server.log_path.read_bytes())
        assert any(int(size) > 0 for size in restored), restored  # the hot chunk really was lost
        admin.close()
    finally:
        server.stop()
        redis.stop()
