"""The GitLab runner API over real HTTP against a live server with PostgreSQL and Redis."""

from __future__ import annotations

import asyncio

import zlib
from pathlib import Path

import httpx
import pytest

from tests.plugins.repos import make_repo

pytestmark = pytest.mark.integration

TWO_STAGES = """
stages: [build, test]
build:
  stage: build
  script: [echo build]
test:
  stage: test
  script: [echo test]
"""


async def _setup(live, tmp_path: Path, yaml: str = TWO_STAGES) -> tuple[httpx.AsyncClient, str, dict]:  # noqa: ANN001
    make_repo(tmp_path / "repo", yaml)
    admin = live.admin()
    runner = (await admin.post("/api/v4/user/runners", json={"description": "t"})).json()
    project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "repo")})).json()
    return admin, runner["token"], project


async def _request(live, token: str, last_update: str | None = None) -> httpx.Response:  # noqa: ANN001
    body = {"token": token, "info": {"name": "t", "features": {"trace_checksum": True}}}
    if last_update:
        body["last_update"] = last_update
    async with httpx.AsyncClient(base_url=live.url) as client:
        return await client.post("/api/v4/jobs/request", json=body)


async def test_admin_endpoints_need_a_valid_private_token(live_server) -> None:  # noqa: ANN001
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        assert (await client.post("/api/v4/user/runners", json={})).status_code == 401
        wrong = await client.post("/api/v4/user/runners", json={}, headers={"PRIVATE-TOKEN": "glpat-wrong"})
        assert wrong.status_code == 401
        assert wrong.json() == {"message": "401 Unauthorized"}


async def test_create_and_verify_runner(live_server) -> None:  # noqa: ANN001
    async with live_server.admin() as admin:
        created = await admin.post("/api/v4/user/runners", json={"runner_type": "instance_type"})
    assert created.status_code == 201
    body = created.json()
    assert body["token"].startswith("glrt-") and isinstance(body["id"], int) and body["token_expires_at"] is None
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        ok = await client.post("/api/v4/runners/verify", json={"token": body["token"], "system_id": "s_0123456789ab"})
        bad = await client.post("/api/v4/runners/verify", json={"token": "glrt-nope"})
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/json"
    assert ok.json() == {"id": body["id"], "token": body["token"], "token_expires_at": None}
    assert bad.status_code == 403


async def test_runner_tokens_are_stored_hashed(live_server) -> None:  # noqa: ANN001
    import sqlalchemy as sa

    async with live_server.admin() as admin:
        token = (await admin.post("/api/v4/user/runners", json={})).json()["token"]
    async with live_server.services.engine.connect() as conn:
        stored = (await conn.execute(sa.text("SELECT token_hash FROM runners"))).scalars().all()
        admin_hashes = (await conn.execute(sa.text("SELECT token_hash FROM tokens"))).scalars().all()
    assert token not in stored and len(stored[0]) == 64
    assert all(not h.startswith("glpat-") for h in admin_hashes)


async def test_job_request_payload_has_gitlab_types(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, token, project = await _setup(live_server, tmp_path)
    idle = await _request(live_server, token)
    assert idle.status_code == 204 and idle.headers["X-GitLab-Last-Update"]
    created = await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    assert created.status_code == 201, created.text
    response = await _request(live_server, token, idle.headers["X-GitLab-Last-Update"])
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    job = response.json()
    assert isinstance(job["id"], int) and job["token"].startswith("glcbt-")
    assert "run" not in job
    assert job["job_info"]["name"] == "build" and isinstance(job["job_info"]["project_id"], int)
    assert isinstance(job["job_info"]["project_jobs_running_on_instance_runners_count"], str)
    assert job["git_info"]["repo_url"].startswith("file://") and len(job["git_info"]["sha"]) == 40
    assert isinstance(job["runner_info"]["timeout"], int)
    assert job["steps"][0] == {"name": "script", "script": ["echo build"], "timeout": 3600, "when": "on_success", "allow_failure": False}
    variables = {v["key"]: v for v in job["variables"]}
    assert variables["CI_JOB_TOKEN"]["masked"] is True and variables["CI_JOB_TOKEN"]["value"] == job["token"]
    assert all(isinstance(v["value"], str) for v in job["variables"])
    # the second stage waits: nothing more to hand out
    assert (await _request(live_server, token)).status_code == 204
    await admin.aclose()


async def test_unchanged_last_update_answers_204_without_claiming(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, token, project = await _setup(live_server, tmp_path)
    version = (await _request(live_server, token)).headers["X-GitLab-Last-Update"]
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    assert (await _request(live_server, token, version)).status_code == 201  # the pending job ticked the queue
    empty = await _request(live_server, token, version)
    assert empty.status_code == 204 and empty.headers["X-GitLab-Last-Update"] != version
    seen: list[str] = []
    live_server.services.observer.add_listener(lambda statement, _params: seen.append(statement))
    cheap = await _request(live_server, token, empty.headers["X-GitLab-Last-Update"])
    assert cheap.status_code == 204  # held for the long-poll timeout, then answered empty
    claims = [s for s in seen if "WITH RECURSIVE projects" in s or "USING candidate" in s]
    assert claims == []  # the echoed version was current: the queue was never scanned
    await admin.aclose()


async def test_unknown_runner_token_is_403(live_server) -> None:  # noqa: ANN001
    assert (await _request(live_server, "glrt-unknown")).status_code == 403


async def test_trace_patch_offsets_and_final_update(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, token, project = await _setup(live_server, tmp_path)
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    job = (await _request(live_server, token)).json()
    jt = {"JOB-TOKEN": job["token"]}
    first, second = b"hello\n" * 10, b"world\n" * 5
    async with httpx.AsyncClient(base_url=live_server.url) as c:
        url = f"/api/v4/jobs/{job['id']}/trace?debug_trace=false"
        ack = await c.put(f"/api/v4/jobs/{job['id']}", json={"token": job["token"], "state": "running", "output": {}})
        assert ack.status_code == 200 and ack.headers["Job-Status"] == "running"
        r = await c.patch(url, content=first, headers={**jt, "Content-Range": f"0-{len(first) - 1}"})
        assert r.status_code == 202
        assert r.headers["Range"] == f"0-{len(first)}" and r.headers["Job-Status"] == "running"
        assert r.headers["X-GitLab-Trace-Update-Interval"] == "1"
        again = await c.patch(url, content=first, headers={**jt, "Content-Range": f"0-{len(first) - 1}"})
        assert again.status_code == 416 and again.headers["Range"] == f"0-{len(first)}"
        malformed = await c.patch(url, content=second, headers={**jt, "Content-Range": "bytes 5"})
        assert malformed.status_code == 416 and malformed.headers["Range"] == f"0-{len(first)}"
        missing = await c.patch(url, content=second, headers=jt)
        assert missing.status_code == 400
        huge = await c.patch(url, content=b"x" * (4 * 1024 * 1024 + 1), headers={**jt, "Content-Range": f"{len(first)}-{len(first) + 4 * 1024 * 1024}"})
        assert huge.status_code == 413
        wrong = await c.patch(url, content=second, headers={"JOB-TOKEN": "glcbt-wrong", "Content-Range": "60-89"})
        assert wrong.status_code == 403
        total = len(first) + len(second)
        checksum = f"crc32:{zlib.crc32(first + second):08x}"
        final = {"token": job["token"], "state": "success", "checksum": checksum, "output": {"checksum": checksum, "bytesize": total}}
        early = await c.put(f"/api/v4/jobs/{job['id']}", json=final)
        assert early.status_code == 202 and early.headers["X-GitLab-Trace-Update-Interval"] == "1"
        r = await c.patch(url, content=second, headers={**jt, "Content-Range": f"{len(first)}-{total - 1}"})
        assert r.status_code == 202 and r.headers["Range"] == f"0-{total}"
        done = await c.put(f"/api/v4/jobs/{job['id']}", json=final)
        assert done.status_code == 200 and done.headers["Job-Status"] == "success"
        late = await c.put(f"/api/v4/jobs/{job['id']}", json=final)
        assert late.status_code == 403 and late.headers["Job-Status"] == "success"
        late_patch = await c.patch(url, content=b"x", headers={**jt, "Content-Range": f"{total}-{total}"})
        assert late_patch.status_code == 403 and late_patch.headers["Job-Status"] == "success"
    log = await admin.get(f"/api/v4/projects/{project['id']}/jobs/{job['id']}/trace")
    assert log.content == first + second and log.headers["Job-Status"] == "success"
    tail = await admin.get(f"/api/v4/projects/{project['id']}/jobs/{job['id']}/trace", headers={"Range": "bytes=55-"})
    assert tail.status_code == 206 and tail.content == (first + second)[55:]
    beyond = await admin.get(f"/api/v4/projects/{project['id']}/jobs/{job['id']}/trace", headers={"Range": f"bytes={total + 1}-"})
    assert beyond.status_code == 416 and beyond.headers["Range"] == f"0-{total}"
    # the next stage is now pending and goes to the runner
    nxt = await _request(live_server, token)
    assert nxt.status_code == 201 and nxt.json()["job_info"]["name"] == "test"
    await admin.aclose()


async def test_archive_moves_the_log_to_the_object_store(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    import sqlalchemy as sa

    admin, token, project = await _setup(live_server, tmp_path)
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    job = (await _request(live_server, token)).json()
    data = bytes(range(256)) * 1200  # 300 KiB: three chunks, the last one partial
    async with httpx.AsyncClient(base_url=live_server.url) as c:
        offset = 0
        for piece in (data[:100_000], data[100_000:250_000], data[250_000:]):
            r = await c.patch(f"/api/v4/jobs/{job['id']}/trace", content=piece,
                              headers={"JOB-TOKEN": job["token"], "Content-Range": f"{offset}-{offset + len(piece) - 1}"})
            assert r.status_code == 202
            offset += len(piece)
        checksum = f"crc32:{zlib.crc32(data):08x}"
        done = await c.put(f"/api/v4/jobs/{job['id']}", json={"token": job["token"], "state": "failed",
                           "failure_reason": "script_failure", "exit_code": 2,
                           "output": {"checksum": checksum, "bytesize": len(data)}})
        assert done.status_code == 200 and done.headers["Job-Status"] == "failed"
    services = live_server.services
    for _ in range(100):  # ours or the background sweep's (woken by the final PUT): whichever holds the lease
        await services.archiver.archive_pending()
        async with services.engine.connect() as conn:
            archived = (await conn.execute(sa.text(f"SELECT trace_archived FROM jobs WHERE id = {job['id']}"))).scalar()
            chunks = (await conn.execute(sa.text(f"SELECT count(*) FROM trace_chunks WHERE job_id = {job['id']}"))).scalar()
        if archived:
            break
        await asyncio.sleep(0.1)
    assert archived is True and chunks == 0
    log = await admin.get(f"/api/v4/projects/{project['id']}/jobs/{job['id']}/trace")
    assert log.content == data
    tail = await admin.get(f"/api/v4/projects/{project['id']}/jobs/{job['id']}/trace", headers={"Range": "bytes=131000-"})
    assert tail.content == data[131000:]
    # regression: reading an archived log from its very end gave a 500 (obstore range error)
    end = await admin.get(f"/api/v4/projects/{project['id']}/jobs/{job['id']}/trace", headers={"Range": f"bytes={len(data)}-"})
    assert end.status_code == 206 and end.content == b""
    info = (await admin.get(f"/api/v4/projects/{project['id']}/jobs/{job['id']}")).json()
    assert info["status"] == "failed" and info["failure_reason"] == "script_failure" and info["exit_code"] == 2
    await admin.aclose()


PARALLEL = """
a:
  script: [echo a]
b:
  script: [echo b]
"""


async def test_a_runner_that_just_got_a_job_is_not_short_circuited(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    """Regression: the 201 carried the new queue version, so the next poll got 204 while a job waited."""
    admin, token, project = await _setup(live_server, tmp_path, PARALLEL)
    seen = (await _request(live_server, token)).headers["X-GitLab-Last-Update"]
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    first = await _request(live_server, token, seen)
    assert first.status_code == 201 and "X-GitLab-Last-Update" not in first.headers
    second = await _request(live_server, token, seen)  # what a runner echoes after a 201
    assert second.status_code == 201
    assert {first.json()["job_info"]["name"], second.json()["job_info"]["name"]} == {"a", "b"}
    empty = await _request(live_server, token)
    assert empty.status_code == 204
    assert (await _request(live_server, token, empty.headers["X-GitLab-Last-Update"])).status_code == 204
    await admin.aclose()


async def _finish(live, job: dict, state: str = "success") -> httpx.Response:  # noqa: ANN001
    async with httpx.AsyncClient(base_url=live.url) as c:
        return await c.put(f"/api/v4/jobs/{job['id']}", json={"token": job["token"], "state": state, "output": {"bytesize": 0}})


MANUAL = """
stages: [build, deploy]
build:
  stage: build
  script: [echo build]
deploy:
  stage: deploy
  when: manual
  script: [echo deploy]
"""


async def test_manual_job_becomes_playable_when_its_stage_comes(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, token, project = await _setup(live_server, tmp_path, MANUAL)
    pipeline = (await admin.post(f"/api/v4/projects/{project['id']}/pipeline")).json()
    jobs_url = f"/api/v4/projects/{project['id']}/pipelines/{pipeline['id']}/jobs"
    assert {j["name"]: j["status"] for j in (await admin.get(jobs_url)).json()} == {"build": "pending", "deploy": "created"}
    build = (await _request(live_server, token)).json()
    assert (await _finish(live_server, build)).status_code == 200
    assert {j["name"]: j["status"] for j in (await admin.get(jobs_url)).json()} == {"build": "success", "deploy": "manual"}
    state = (await admin.get(f"/api/v4/projects/{project['id']}/pipelines/{pipeline['id']}")).json()
    assert state["status"] == "success"  # an optional manual job does not block the pipeline
    assert (await _request(live_server, token)).status_code == 204
    await admin.aclose()


async def test_server_connections_to_postgres_and_redis_set_keepalive(live_server) -> None:  # noqa: ANN001
    from conveyor.protocol import keepalive

    services = live_server.services
    expected = (True, *(getattr(services.settings.keepalive, k) for k in ("idle", "interval", "count")))
    async with services.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        sock = raw.driver_connection._transport.get_extra_info("socket")
        assert keepalive.read(sock) == expected
    await services.redis.ping()
    connection = await services.redis.connection_pool.get_connection()
    try:
        sock = connection._writer.transport.get_extra_info("socket")
        assert keepalive.read(sock) == expected
    finally:
        await services.redis.connection_pool.release(connection)


async def test_metrics_expose_statement_and_savepoint_counts(live_server) -> None:  # noqa: ANN001
    from conveyor.server.db import SavepointDetected

    async with httpx.AsyncClient(base_url=live_server.url) as client:
        before = (await client.get("/metrics")).text
        assert "conveyor_db_savepoints_total 0.0" in before
        with pytest.raises(SavepointDetected):  # what the hook does when a SAVEPOINT passes it
            live_server.services.observer.observe("SAVEPOINT sa_savepoint_1")
        after = (await client.get("/metrics")).text
        ready = await client.get("/-/readiness")
    assert "conveyor_db_savepoints_total 1.0" in after
    statements = next(float(line.split()[1]) for line in after.splitlines() if line.startswith("conveyor_db_statements_total"))
    assert statements > 0
    assert ready.status_code == 200 and ready.json() == {"status": "ok"}


async def test_root_token_is_generated_once_when_none_is_configured(database_url: str) -> None:
    from conveyor.server.accounts import AdminTokens
    from conveyor.server.db import StatementObserver, create_engine

    engine = create_engine(database_url, StatementObserver("raise"))
    try:
        tokens = AdminTokens(engine)
        generated = await tokens.ensure_root(None)
        assert generated and generated.startswith("glpat-") and await tokens.valid(generated)
        assert await tokens.ensure_root(None) is None  # printed once: never generated again
        assert await tokens.ensure_root("glpat-configured") is None
        assert await tokens.valid("glpat-configured") and not await tokens.valid("glpat-other")
    finally:
        await engine.dispose()


async def test_two_archivers_never_race_on_one_log(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    """Regression: two server processes archived the same job; the loser found the chunks deleted."""
    from conveyor.server.archive import TraceArchiver

    admin, token, project = await _setup(live_server, tmp_path)
    services = live_server.services
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    job = (await _request(live_server, token)).json()
    data = b"x" * 300_000
    async with httpx.AsyncClient(base_url=live_server.url) as c:
        await c.patch(f"/api/v4/jobs/{job['id']}/trace", content=data,
                      headers={"JOB-TOKEN": job["token"], "Content-Range": f"0-{len(data) - 1}"})
    import sqlalchemy as sa

    async with services.engine.begin() as conn:  # finished behind the background archiver's back
        await conn.execute(sa.text("UPDATE jobs SET status = 'success', finished_at = now() WHERE id = :id"), {"id": job["id"]})
    archivers = [TraceArchiver(services.engine, services.traces, services.objects, services.redis) for _ in range(3)]
    results = await asyncio.gather(*(a.archive(job["id"]) for a in archivers))
    assert sum(results) <= 1 and all(a.failures == 0 for a in archivers)
    log = await admin.get(f"/api/v4/projects/{project['id']}/jobs/{job['id']}/trace")
    assert log.content == data
    await admin.aclose()


def _metric(text: str, name: str) -> float:
    return next(float(line.split()[1]) for line in text.splitlines() if line.startswith(name + " "))


async def test_metrics_count_log_bytes_patches_416s_and_sealed_chunks(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, token, project = await _setup(live_server, tmp_path)
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    job = (await _request(live_server, token)).json()
    chunk = live_server.settings.trace_chunk_size
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        headers = {"JOB-TOKEN": job["token"]}
        data = b"x" * (chunk + 10)  # one chunk full: sealed
        ok = await client.patch(f"/api/v4/jobs/{job['id']}/trace", content=data, headers={**headers, "Content-Range": f"0-{len(data) - 1}"})
        late = await client.patch(f"/api/v4/jobs/{job['id']}/trace", content=b"y", headers={**headers, "Content-Range": "5-5"})
        text = (await client.get("/metrics")).text
    assert ok.status_code == 202 and late.status_code == 416
    assert _metric(text, "conveyor_trace_bytes_appended_total") == len(data)
    assert _metric(text, "conveyor_trace_patches_total") == 1
    assert _metric(text, "conveyor_trace_range_mismatches_total") == 1
    assert _metric(text, "conveyor_trace_chunks_sealed_total") == 1
    await admin.aclose()
