"""Remembered token checks over real HTTP, PostgreSQL and Redis: what they save, and that a revoked
token is refused (job tokens: at PostgreSQL's NOTIFY; admin tokens: within the configured TTL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from conveyor.server import auth
from conveyor.server.accounts import job_tokens
from conveyor.server.db import queries
from tests.integration.server.test_viewer import RunnerSide, claim_job
from tests.plugins.live import ROOT_TOKEN

pytestmark = pytest.mark.integration

JOBS_LOOKUP = "FROM jobs"


@pytest.fixture
def server_settings(server_settings):  # noqa: ANN001, ANN201
    return server_settings.with_overrides(admin_token_cache_ttl=1)


@pytest.fixture
async def running(live_server, tmp_path: Path) -> AsyncIterator[tuple[dict, RunnerSide]]:  # noqa: ANN001
    await asyncio.wait_for(live_server.services.job_tokens.listening.wait(), 30)
    project, runner = await claim_job(live_server.url, tmp_path)
    yield project, runner
    await runner.http.aclose()


def record_statements(live_server) -> list[str]:  # noqa: ANN001
    seen: list[str] = []
    live_server.services.observer.add_listener(lambda statement, _params: seen.append(statement))
    return seen


async def patch(runner: RunnerSide, data: bytes) -> httpx.Response:
    start = len(runner.sent)
    return await runner.http.patch(
        f"/api/v4/jobs/{runner.job['id']}/trace",
        content=data,
        headers={"JOB-TOKEN": runner.job["token"], "Content-Range": f"{start}-{start + len(data) - 1}"},
    )


async def revoked(live_server, job_id: int) -> None:  # noqa: ANN001
    """Until this process has dropped the job's remembered row (the NOTIFY arrived)."""
    cache = live_server.services.job_tokens
    for _ in range(1000):
        if job_id not in cache._rows:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the revocation NOTIFY never arrived")


async def test_a_patch_after_the_first_asks_postgres_nothing_about_the_job(live_server, running) -> None:  # noqa: ANN001
    _, runner = running
    await runner.patch(b"first\n")
    seen = record_statements(live_server)
    hits = live_server.services.job_tokens.hits
    response = await runner.patch(b"second\n")
    assert response.headers["Job-Status"] == "running"
    assert not [s for s in seen if JOBS_LOOKUP in s and "SELECT" in s], seen
    assert live_server.services.job_tokens.hits == hits + 1


async def test_the_first_patch_after_claim_and_acknowledgement_asks_postgres_nothing(live_server, running) -> None:  # noqa: ANN001
    # issue 24: the claim remembers the token it hands out and the acknowledgement marks the
    # remembered row acknowledged, so a job's first PATCH is no token lookup and no touch
    _, runner = running
    seen = record_statements(live_server)
    hits = live_server.services.job_tokens.hits
    response = await runner.patch(b"first\n")
    assert response.status_code == 202 and response.headers["Job-Status"] == "running"
    assert not [s for s in seen if "jobs" in s], seen
    assert live_server.services.job_tokens.hits == hits + 1


async def test_a_wrong_token_is_refused_even_when_the_job_is_remembered(live_server, running) -> None:  # noqa: ANN001
    _, runner = running
    await runner.patch(b"first\n")
    response = await runner.http.patch(
        f"/api/v4/jobs/{runner.job['id']}/trace",
        content=b"x",
        headers={"JOB-TOKEN": auth.generate(auth.JOB_PREFIX), "Content-Range": f"{len(runner.sent)}-{len(runner.sent)}"},
    )
    assert response.status_code == 403


async def test_a_job_finished_by_another_process_is_refused_at_the_next_patch(live_server, running) -> None:  # noqa: ANN001
    """The status changes behind this process's back (another server, the sweeper, plain SQL):
    PostgreSQL's NOTIFY drops the remembered row, and the next PATCH gets GitLab's 403."""
    _, runner = running
    job_id = runner.job["id"]
    await runner.patch(b"log\n")
    assert job_id in live_server.services.job_tokens._rows
    engine = live_server.services.engine
    async with engine.begin() as conn:  # what the stuck-job sweeper does
        await conn.execute(sa.text("UPDATE jobs SET status = 'failed', finished_at = now() WHERE id = :id"), {"id": job_id})
    await revoked(live_server, job_id)
    response = await patch(runner, b"more\n")
    assert response.status_code == 403
    assert response.headers["Job-Status"] == "failed"


async def test_a_patch_after_the_final_update_is_refused(live_server, running) -> None:  # noqa: ANN001
    _, runner = running
    await runner.patch(b"log\n")
    await runner.finish("success")
    response = await patch(runner, b"late\n")  # no wait for the NOTIFY: this process forgot it itself
    assert response.status_code == 403
    assert response.headers["Job-Status"] == "success"


async def test_a_requeued_job_s_old_token_is_refused(live_server, running) -> None:  # noqa: ANN001
    _, runner = running
    job_id = runner.job["id"]
    await runner.patch(b"log\n")
    async with live_server.services.engine.begin() as conn:  # requeue_unacknowledged: status and token go
        await conn.execute(sa.text("UPDATE jobs SET status = 'pending', token_hash = NULL WHERE id = :id"), {"id": job_id})
    await revoked(live_server, job_id)
    assert (await patch(runner, b"more\n")).status_code == 403


async def test_a_cancel_shows_in_the_next_patch_s_job_status(live_server, running) -> None:  # noqa: ANN001
    project, runner = running
    job_id = runner.job["id"]
    await runner.patch(b"log\n")
    async with live_server.admin() as admin:
        response = await admin.post(f"/api/v4/projects/{project['id']}/jobs/{job_id}/cancel")
        assert response.status_code == 201, response.text  # GitLab: a POST action without a status of its own
        status = response.json()["status"]
    await revoked(live_server, job_id)
    response = await patch(runner, b"more\n")
    if status == "canceling":  # the runner is told through the header and finishes its after_script
        assert response.status_code == 202
        assert response.headers["Job-Status"] == "canceling"
    else:
        assert response.status_code == 403
        assert response.headers["Job-Status"] == status


async def test_a_revocation_during_the_lookup_is_not_remembered(live_server, running) -> None:  # noqa: ANN001
    _, runner = running
    cache = live_server.services.job_tokens
    async with live_server.services.engine.connect() as conn:
        row = await queries.jobs.get(conn, runner.job["id"])
    generation = cache.generation
    cache.revoke(row["id"])  # a NOTIFY handled between the lookup's start and its end
    cache.put(row, generation)
    assert row["id"] not in cache._rows
    cache.put(row, cache.generation)
    assert row["id"] in cache._rows


async def test_while_the_listen_connection_is_down_nothing_is_served_from_memory(live_server, running, postgres) -> None:  # noqa: ANN001
    _, runner = running
    job_id = runner.job["id"]
    cache = live_server.services.job_tokens
    await runner.patch(b"log\n")
    assert job_id in cache._rows
    database = live_server.settings.database_url.rsplit("/", 1)[1]
    postgres.psql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        f" WHERE application_name = '{job_tokens.APPLICATION_NAME}' AND datname = '{database}'"
    )
    for _ in range(1000):
        if not cache.listening.is_set():
            break
        await asyncio.sleep(0.01)
    assert not cache._rows  # notifications may be lost meanwhile: forget everything
    await asyncio.wait_for(cache.listening.wait(), 30)  # and listen again
    await runner.patch(b"after\n")
    assert job_id in cache._rows


# ---- admin tokens --------------------------------------------------------------------------------


async def add_admin_token(live_server) -> str:  # noqa: ANN001
    token = auth.generate(auth.ADMIN_PREFIX)
    async with live_server.services.engine.begin() as conn:
        await queries.tokens.insert(conn, "second", auth.digest(token))
    return token


async def delete_admin_token(live_server, token: str) -> None:  # noqa: ANN001
    async with live_server.services.engine.begin() as conn:
        await conn.execute(sa.text("DELETE FROM tokens WHERE token_hash = :h"), {"h": auth.digest(token)})


async def projects(url: str, token: str) -> int:
    async with httpx.AsyncClient(base_url=url, headers={"PRIVATE-TOKEN": token}, timeout=30) as http:
        return (await http.get("/api/v4/projects")).status_code


async def test_a_deleted_admin_token_is_refused_once_the_ttl_has_passed(live_server) -> None:  # noqa: ANN001
    token = await add_admin_token(live_server)
    assert await projects(live_server.url, token) == 200
    seen = record_statements(live_server)
    assert await projects(live_server.url, token) == 200
    assert not [s for s in seen if "FROM tokens" in s], "a verified token was looked up again"
    await delete_admin_token(live_server, token)
    await asyncio.sleep(live_server.settings.admin_token_cache_ttl + 0.2)
    assert await projects(live_server.url, token) == 401


async def test_without_a_ttl_a_deleted_admin_token_is_refused_at_once(live_server) -> None:  # noqa: ANN001
    live_server.services.admin_tokens.cache_ttl = 0
    token = await add_admin_token(live_server)
    assert await projects(live_server.url, token) == 200
    await delete_admin_token(live_server, token)
    assert await projects(live_server.url, token) == 401


async def test_an_unknown_admin_token_is_not_remembered(live_server) -> None:  # noqa: ANN001
    token = auth.generate(auth.ADMIN_PREFIX)
    assert await projects(live_server.url, token) == 401
    async with live_server.services.engine.begin() as conn:  # created a moment later: works at once
        await queries.tokens.insert(conn, "late", auth.digest(token))
    assert await projects(live_server.url, token) == 200
    assert await projects(live_server.url, ROOT_TOKEN) == 200
