"""The job queue over HTTP: long polling, matching, fairness, two-phase accept, sweeps, cancel."""

from __future__ import annotations

import asyncio
import time
import zlib
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.integration.server.test_runner_api import _request, _setup
from tests.plugins.repos import make_repo

pytestmark = pytest.mark.integration


@pytest.fixture
def server_settings(server_settings):  # noqa: ANN001, ANN201
    # long holds so a wake-up is visibly not a timeout; sweeps driven by the tests themselves
    return server_settings.with_overrides(long_poll_timeout=30, sweep_interval=3600, ack_timeout=1, running_no_update_timeout=2)


async def _sql(live, statement: str, **params) -> list:  # noqa: ANN001, ANN003
    async with live.services.engine.begin() as conn:
        result = await conn.execute(sa.text(statement), params)
        return result.all() if result.returns_rows else []


async def _runner(live, admin: httpx.AsyncClient, **attributes) -> str:  # noqa: ANN001, ANN003
    token = (await admin.post("/api/v4/user/runners", json={})).json()["token"]
    if attributes:
        sets = ", ".join(f"{k} = :{k}" for k in attributes)
        await _sql(live, f"UPDATE runners SET {sets} WHERE id = (SELECT max(id) FROM runners)", **attributes)
    return token


async def _version(live, token: str) -> str:  # noqa: ANN001
    async with httpx.AsyncClient(base_url=live.url) as c:
        response = await c.post("/api/v4/jobs/request", json={"token": token})  # no last_update: answered now
    assert response.status_code == 204
    return response.headers["X-GitLab-Last-Update"]


async def test_a_held_request_gets_the_job_the_moment_it_is_queued(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, token, project = await _setup(live_server, tmp_path)
    version = await _version(live_server, token)
    started = time.monotonic()
    held = asyncio.create_task(_request(live_server, token, version))
    await asyncio.sleep(0.5)
    assert not held.done()  # nothing pending: the request is held
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    response = await held
    assert response.status_code == 201 and response.json()["job_info"]["name"] == "build"
    assert time.monotonic() - started < 30  # woken by the tick, not by the long-poll timeout
    await admin.aclose()


TAGGED = """
plain:
  script: [echo plain]
docker:
  tags: [docker]
  script: [echo docker]
gpu:
  tags: [docker, gpu]
  script: [echo gpu]
"""


async def test_tags_and_run_untagged_decide_who_gets_what(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, _, project = await _setup(live_server, tmp_path, TAGGED)
    untagged_only = await _runner(live_server, admin)
    docker_only = await _runner(live_server, admin, tag_list=["docker"], run_untagged=False)
    everything = await _runner(live_server, admin, tag_list=["gpu", "docker", "linux"])
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    got = (await _request(live_server, docker_only)).json()["job_info"]["name"]
    assert got == "docker"
    assert (await _request(live_server, docker_only)).status_code == 204  # gpu needs a tag it lacks
    assert (await _request(live_server, untagged_only)).json()["job_info"]["name"] == "plain"
    assert (await _request(live_server, everything)).json()["job_info"]["name"] == "gpu"
    await admin.aclose()


async def test_protected_runners_take_only_protected_refs(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, _, project = await _setup(live_server, tmp_path)
    protected = await _runner(live_server, admin, access_level="ref_protected")
    repo = tmp_path / "repo"
    import subprocess

    subprocess.run(["git", "-C", str(repo), "branch", "feature"], check=True)
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline", params={"ref": "feature"})
    assert (await _request(live_server, protected)).status_code == 204  # feature is not protected
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline")  # main: the default branch
    job = (await _request(live_server, protected)).json()
    assert job["git_info"]["ref"] == "main" and job["git_info"]["protected"] is True
    await admin.aclose()


async def test_a_paused_runner_gets_nothing(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, _, project = await _setup(live_server, tmp_path)
    paused = await _runner(live_server, admin, paused=True)
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    response = await _request(live_server, paused)
    assert response.status_code == 204 and response.headers["X-GitLab-Last-Update"]
    await admin.aclose()


async def test_instance_runners_serve_the_project_with_fewer_running_jobs_first(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    many = "\n".join(f"a{i}:\n  script: [echo {i}]" for i in range(4))
    admin, token, busy = await _setup(live_server, tmp_path, many)
    make_repo(tmp_path / "quiet", "q:\n  script: [echo q]\n")
    quiet = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "quiet")})).json()
    await admin.post(f"/api/v4/projects/{busy['id']}/pipeline")
    first = (await _request(live_server, token)).json()  # busy's oldest job; busy now runs 1
    await admin.post(f"/api/v4/projects/{quiet['id']}/pipeline")  # newer than busy's pending jobs
    second = (await _request(live_server, token)).json()
    third = (await _request(live_server, token)).json()
    assert first["job_info"]["project_id"] == busy["id"]
    assert second["job_info"]["project_id"] == quiet["id"]  # fewer running jobs wins over age
    assert third["job_info"]["project_id"] == busy["id"]
    await admin.aclose()


async def test_unacknowledged_job_goes_back_to_pending_with_its_token_revoked(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, token, project = await _setup(live_server, tmp_path)
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    lost = (await _request(live_server, token)).json()  # the 201 "never reached" its runner
    await asyncio.sleep(1.2)  # past ack_timeout
    result = await live_server.services.sweeper.sweep()
    assert result.requeued == 1
    async with httpx.AsyncClient(base_url=live_server.url) as c:
        stale = await c.patch(f"/api/v4/jobs/{lost['id']}/trace", content=b"x",
                              headers={"JOB-TOKEN": lost["token"], "Content-Range": "0-0"})
    assert stale.status_code == 403  # the first hand-out can never run alongside the second
    again = (await _request(live_server, token)).json()
    assert again["id"] == lost["id"] and again["token"] != lost["token"]
    async with httpx.AsyncClient(base_url=live_server.url) as c:
        ack = await c.put(f"/api/v4/jobs/{again['id']}", json={"token": again["token"], "state": "running", "output": {}})
    assert ack.status_code == 200
    await asyncio.sleep(1.2)
    assert (await live_server.services.sweeper.sweep()).requeued == 0  # acknowledged jobs stay put
    await admin.aclose()


async def test_a_silent_running_job_fails_with_runner_system_failure_and_keeps_its_log(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, token, project = await _setup(live_server, tmp_path)
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    job = (await _request(live_server, token)).json()
    async with httpx.AsyncClient(base_url=live_server.url) as c:
        r = await c.patch(f"/api/v4/jobs/{job['id']}/trace", content=b"last words\n",
                          headers={"JOB-TOKEN": job["token"], "Content-Range": "0-10"})
        assert r.status_code == 202
    await asyncio.sleep(2.5)  # past running_no_update_timeout: the runner died
    assert (await live_server.services.sweeper.sweep()).ended == 1
    info = (await admin.get(f"/api/v4/projects/{project['id']}/jobs/{job['id']}")).json()
    assert info["status"] == "failed" and info["failure_reason"] == "runner_system_failure"
    log = await admin.get(f"/api/v4/projects/{project['id']}/jobs/{job['id']}/trace")
    assert log.content == b"last words\n"
    await admin.aclose()


async def _patch(live, job: dict, data: bytes, offset: int = 0) -> httpx.Response:  # noqa: ANN001
    async with httpx.AsyncClient(base_url=live.url) as c:
        return await c.patch(f"/api/v4/jobs/{job['id']}/trace", content=data,
                             headers={"JOB-TOKEN": job["token"], "Content-Range": f"{offset}-{offset + len(data) - 1}"})


async def test_graceful_cancel_goes_through_canceling(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, token, project = await _setup(live_server, tmp_path)
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    async with httpx.AsyncClient(base_url=live_server.url) as c:
        body = {"token": token, "info": {"features": {"cancel_gracefully": True}}}
        job = (await c.post("/api/v4/jobs/request", json=body)).json()
    await _sql(live_server, "UPDATE runners SET features = '{\"cancel_gracefully\": true}'::jsonb")
    canceled = await admin.post(f"/api/v4/projects/{project['id']}/jobs/{job['id']}/cancel")
    assert canceled.json()["status"] == "canceling"
    r = await _patch(live_server, job, b"still here\n")
    assert r.status_code == 202 and r.headers["Job-Status"] == "canceling"
    async with httpx.AsyncClient(base_url=live_server.url) as c:
        final = await c.put(f"/api/v4/jobs/{job['id']}", json={
            "token": job["token"], "state": "failed", "failure_reason": "unknown_failure",
            "output": {"checksum": f"crc32:{zlib.crc32(b'still here' + bytes([10])):08x}", "bytesize": 11}})
    assert final.status_code == 200 and final.headers["Job-Status"] == "canceled"
    info = (await admin.get(f"/api/v4/projects/{project['id']}/jobs/{job['id']}")).json()
    assert info["status"] == "canceled"
    await admin.aclose()


async def test_hard_cancel_answers_403_with_job_status_canceled(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, token, project = await _setup(live_server, tmp_path)
    pipeline = (await admin.post(f"/api/v4/projects/{project['id']}/pipeline")).json()
    job = (await _request(live_server, token)).json()
    canceled = await admin.post(f"/api/v4/projects/{project['id']}/jobs/{job['id']}/cancel")
    assert canceled.json()["status"] == "canceled"
    r = await _patch(live_server, job, b"x")
    assert r.status_code == 403 and r.headers["Job-Status"] == "canceled"
    jobs = (await admin.get(f"/api/v4/projects/{project['id']}/pipelines/{pipeline['id']}/jobs")).json()
    assert {j["name"]: j["status"] for j in jobs} == {"build": "canceled", "test": "skipped"}
    state = (await admin.get(f"/api/v4/projects/{project['id']}/pipelines/{pipeline['id']}")).json()
    assert state["status"] == "canceled"
    assert (await _request(live_server, token)).status_code == 204
    await admin.aclose()


async def test_canceling_a_pipeline_cancels_every_unfinished_job(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, token, project = await _setup(live_server, tmp_path)
    pipeline = (await admin.post(f"/api/v4/projects/{project['id']}/pipeline")).json()
    running = (await _request(live_server, token)).json()
    state = (await admin.post(f"/api/v4/projects/{project['id']}/pipelines/{pipeline['id']}/cancel")).json()
    assert state["status"] == "canceled"
    jobs = (await admin.get(f"/api/v4/projects/{project['id']}/pipelines/{pipeline['id']}/jobs")).json()
    assert {j["name"]: j["status"] for j in jobs} == {"build": "canceled", "test": "canceled"}
    assert (await _patch(live_server, running, b"x")).status_code == 403
    assert (await _request(live_server, token)).status_code == 204
    await admin.aclose()


async def test_stopping_the_server_releases_held_requests(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    """Regression: held long polls kept uvicorn draining for up to long_poll_timeout at shutdown."""
    admin, token, _ = await _setup(live_server, tmp_path)
    version = await _version(live_server, token)
    held = asyncio.create_task(_request(live_server, token, version))
    await asyncio.sleep(0.5)
    assert not held.done()
    await live_server.services.notifier.close()
    response = await asyncio.wait_for(held, 10)  # not the 30 s hold
    assert response.status_code == 204
    await admin.aclose()


async def test_later_stages_get_earlier_artifacts_as_dependencies(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, token, project = await _setup(live_server, tmp_path)
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    build = (await _request(live_server, token)).json()
    archive = b"PK\x05\x06" + b"\x00" * 18  # an empty zip
    async with httpx.AsyncClient(base_url=live_server.url) as c:
        uploaded = await c.post(f"/api/v4/jobs/{build['id']}/artifacts", params={"artifact_type": "archive", "artifact_format": "zip"},
                                files={"file": ("artifacts.zip", archive, "application/octet-stream")},
                                headers={"JOB-TOKEN": build["token"]})
        assert uploaded.status_code == 201
        done = await c.put(f"/api/v4/jobs/{build['id']}", json={"token": build["token"], "state": "success", "output": {"bytesize": 0}})
        assert done.status_code == 200
    test = (await _request(live_server, token)).json()
    assert test["dependencies"] == [
        {"id": build["id"], "token": test["token"], "name": "build",
         "artifacts_file": {"filename": "artifacts.zip", "size": len(archive)}}
    ]
    async with httpx.AsyncClient(base_url=live_server.url) as c:
        download = await c.get(f"/api/v4/jobs/{build['id']}/artifacts", headers={"JOB-TOKEN": test["token"]})
    assert download.status_code == 200 and download.content == archive
    await admin.aclose()


async def test_a_new_job_wakes_only_runners_that_may_take_it(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    """No thundering herd: idle runners that cannot take the job are not sent to the database."""
    admin, _, project = await _setup(live_server, tmp_path, "gpu:\n  tags: [gpu]\n  script: [echo gpu]\n")
    idle = [await _runner(live_server, admin) for _ in range(6)]
    gpu = await _runner(live_server, admin, tag_list=["gpu"])
    version = await _version(live_server, gpu)
    held_idle = [asyncio.create_task(_request(live_server, token, version)) for token in idle]
    held_gpu = asyncio.create_task(_request(live_server, gpu, version))
    await asyncio.sleep(0.5)
    claims: list[str] = []
    live_server.services.observer.add_listener(
        lambda statement, _p: claims.append(statement) if "USING candidate" in statement else None
    )
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    response = await asyncio.wait_for(held_gpu, 20)
    assert response.status_code == 201 and response.json()["job_info"]["name"] == "gpu"
    await asyncio.sleep(0.5)
    assert not any(task.done() for task in held_idle)  # still held: never woken
    assert len(claims) == 1
    await live_server.services.notifier.close()
    assert {(await task).status_code for task in held_idle} == {204}
    await admin.aclose()


async def test_a_runner_echoing_a_version_followed_only_by_jobs_it_cannot_take_is_not_sent_to_the_database(
    live_server, tmp_path: Path  # noqa: ANN001
) -> None:
    """Versions move with every new job anywhere; a claim is spent only when a job this runner
    may take became pending since the version it echoes (7 wasted claims per request before)."""
    admin, _, project = await _setup(live_server, tmp_path, "gpu:\n  tags: [gpu]\n  script: [echo gpu]\n")
    untagged = await _runner(live_server, admin)
    seen = await _version(live_server, untagged)
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline")  # a gpu job: the version moves
    await asyncio.sleep(0.3)  # the tick reaches the subscriber
    claims: list[str] = []
    live_server.services.observer.add_listener(
        lambda statement, _p: claims.append(statement) if "USING candidate" in statement else None
    )
    held = asyncio.create_task(_request(live_server, untagged, seen))
    await asyncio.sleep(0.5)
    assert not held.done() and claims == []  # held without a claim: nothing it may take is new
    await live_server.services.notifier.close()
    assert (await held).status_code == 204
    await admin.aclose()


async def test_a_new_job_costs_one_claim_however_many_runners_wait(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    """Issue 24: one held request is woken per new job (two were: the second's claim found
    nothing, a transaction per job spent for nothing); a claim that finds nothing relays."""
    admin, _, project = await _setup(live_server, tmp_path, "job:\n  script: [echo one]\n")
    runners = [await _runner(live_server, admin) for _ in range(3)]
    version = await _version(live_server, runners[0])
    held = [asyncio.create_task(_request(live_server, token, version)) for token in runners]
    await asyncio.sleep(0.5)
    claims: list[str] = []
    live_server.services.observer.add_listener(
        lambda statement, _p: claims.append(statement) if "USING candidate" in statement else None
    )
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    done, _ = await asyncio.wait(held, timeout=20, return_when=asyncio.FIRST_COMPLETED)
    assert [task.result().status_code for task in done] == [201]
    await asyncio.sleep(0.5)
    assert sum(task.done() for task in held) == 1 and len(claims) == 1, claims
    await live_server.services.notifier.close()
    assert sorted([(await task).status_code for task in held]) == [201, 204, 204]
    await admin.aclose()


async def test_a_runner_back_from_its_job_makes_no_claim_when_this_process_took_every_later_job(
    live_server, tmp_path: Path  # noqa: ANN001
) -> None:
    """Issue 24: the tick of a job this process's request claimed sends no other runner echoing an
    older version to the database (a claim that found nothing, a transaction per job in bench/e2e)."""
    admin, _, project = await _setup(live_server, tmp_path, "job:\n  script: [echo one]\n")
    returning, taker = await _runner(live_server, admin), await _runner(live_server, admin)
    seen = await _version(live_server, returning)
    held = asyncio.create_task(_request(live_server, taker, await _version(live_server, taker)))
    await asyncio.sleep(0.3)
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    assert (await asyncio.wait_for(held, 20)).status_code == 201  # the taker claimed the new job
    claims: list[str] = []
    live_server.services.observer.add_listener(
        lambda statement, _p: claims.append(statement) if "USING candidate" in statement else None
    )
    back = asyncio.create_task(_request(live_server, returning, seen))  # echoes the version before the job
    await asyncio.sleep(0.5)
    assert not back.done() and claims == []  # held without a claim: the only new job is taken
    await live_server.services.notifier.close()
    assert (await back).status_code == 204
    await admin.aclose()
