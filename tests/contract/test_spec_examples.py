"""The request/response examples of runner-api.md section 13, replayed against a live server.

Each test sends the example's request (same headers and body shape, real tokens substituted)
and checks what the real gitlab-runner relies on: status, the headers the example shows, and the
JSON types (runner-api.md 1.2, 3.7). Examples 9, 11, 12 and 13 (artifacts, cancellation) are
not here yet.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import pytest

from tests.plugins.repos import make_repo

pytestmark = pytest.mark.integration

SYSTEM_ID = "s_0123456789ab"
REGISTRATION_TOKEN = "GR1348941EXAMPLEregistration"
FEATURES_SHELL = {
    "variables": True, "image": False, "services": False, "artifacts": True, "cache": True,
    "fallback_cache_keys": True, "shared": True, "upload_multiple_artifacts": True,
    "upload_raw_artifacts": True, "session": True, "terminal": True, "refspecs": True, "masking": True,
    "proxy": False, "raw_variables": True, "artifacts_exclude": True, "multi_build_steps": True,
    "trace_reset": True, "trace_checksum": True, "trace_size": True, "vault_secrets": True,
    "cancelable": True, "return_exit_code": True, "service_variables": False,
    "service_multiple_aliases": False, "image_executor_opts": False, "service_executor_opts": False,
    "cancel_gracefully": True, "native_steps_integration": True, "two_phase_job_commit": True,
    "job_inputs": True,
}
INFO = {  # Example 3
    "name": "gitlab-runner", "version": "19.4.0", "revision": "d79f3e7b", "platform": "linux",
    "architecture": "amd64", "executor": "shell", "shell": "bash", "features": FEATURES_SHELL,
    "config": {"gpus": ""},
}

# The example log exactly as section 13 prints it: \e = 0x1B, \r = 0x0D, \n = 0x0A.
CHUNK_1_TEXT = r"""
2026-08-22T10:00:00.000100Z 00O \e[0KRunning with gitlab-runner 19.4.0 (d79f3e7b)\e[0;m\n
2026-08-22T10:00:00.000120Z 00O \e[0K  on py-shell-runner t1_AbCdE, system ID: s_0123456789ab\e[0;m\n
2026-08-22T10:00:00.000300Z 00O section_start:1787392800:prepare_executor\r\e[0K\n
2026-08-22T10:00:00.000310Z 00O+\e[0K\e[36;1mPreparing the "shell" executor\e[0;m\e[0;m\n
"""
CHUNK_2_TEXT = r"""
2026-08-22T10:00:01.000000Z 00O section_end:1787392801:prepare_executor\r\e[0K\n
2026-08-22T10:00:01.000010Z 00O+section_start:1787392801:step_script\r\e[0K\n
2026-08-22T10:00:01.000020Z 00O+\e[0K\e[36;1mExecuting "step_script" stage of the job script\e[0;m\e[0;m\n
2026-08-22T10:00:01.000500Z 01O \e[32;1m$ echo hello $SECRET\e[0;m\n
2026-08-22T10:00:01.000600Z 01O hello [MASKED]\n
2026-08-22T10:00:02.000000Z 00O section_end:1787392802:step_script\r\e[0K\n
2026-08-22T10:00:02.000010Z 00O+\e[32;1mJob succeeded\e[0;m\n
"""


def _log_bytes(text: str) -> bytes:
    lines = [line for line in text.splitlines() if line]
    return "".join(lines).replace(r"\e", "\x1b").replace(r"\r", "\r").replace(r"\n", "\n").encode()


CHUNK_1 = _log_bytes(CHUNK_1_TEXT)
CHUNK_2 = _log_bytes(CHUNK_2_TEXT)
LOG = CHUNK_1 + CHUNK_2

JOB_YAML = """
build:
  stage: test
  variables:
    GIT_STRATEGY: none
  script: ["echo hello $SECRET"]
  after_script: ["echo done"]
"""


@pytest.fixture
def server_settings(server_settings):  # noqa: ANN001, ANN201
    """Settings that reproduce the examples: update interval 3 s, a registration token, short holds."""
    return server_settings.with_overrides(
        trace_update_interval=3, runner_registration_token=REGISTRATION_TOKEN, long_poll_timeout=1
    )


def test_example_log_chunks_match_the_spec() -> None:
    assert (len(CHUNK_1), len(CHUNK_2), len(LOG)) == (347, 494, 841)
    assert f"{zlib.crc32(LOG):08x}" == "6a482bde"
    assert f"{zlib.crc32(CHUNK_1):08x}" == "35800173"  # Example 8


# -- helpers --------------------------------------------------------------------------------------


def _runner_headers(token: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "Accept": "application/json", "RUNNER-TOKEN": token}


def _job_headers(job_token: str, **extra: str) -> dict[str, str]:
    return {"JOB-TOKEN": job_token, **extra}


def _media_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip()


def _is_int(value: Any) -> bool:
    return type(value) is int  # bool is an int in Python, not on the wire


def _is_str_or_null(value: Any) -> bool:
    return value is None or isinstance(value, str)


async def _runner(live) -> str:  # noqa: ANN001
    async with live.admin() as admin:
        return (await admin.post("/api/v4/user/runners", json={"runner_type": "instance_type"})).json()["token"]


async def _job_request(client: httpx.AsyncClient, token: str, last_update: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"info": INFO, "token": token, "system_id": SYSTEM_ID}
    if last_update is not None:
        body["last_update"] = last_update
    return await client.post("/api/v4/jobs/request", json=body, headers=_runner_headers(token))


async def _assigned_job(live, tmp_path: Path) -> dict[str, Any]:  # noqa: ANN001
    """A runner, a project with one job, and that job taken by the runner (Example 4)."""
    token = await _runner(live)
    make_repo(tmp_path / "repo", JOB_YAML)
    async with live.admin() as admin:
        project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "repo")})).json()
        assert (await admin.post(f"/api/v4/projects/{project['id']}/pipeline")).status_code == 201
    async with httpx.AsyncClient(base_url=live.url) as client:
        response = await _job_request(client, token)
    assert response.status_code == 201, response.text
    return {**response.json(), "project_id": project["id"]}


async def _ack(client: httpx.AsyncClient, job: dict[str, Any]) -> httpx.Response:
    """Example 5."""
    body = {"info": INFO, "token": job["token"], "state": "running", "output": {}}
    return await client.put(
        f"/api/v4/jobs/{job['id']}", json=body, headers=_job_headers(job["token"], **{"Content-Type": "application/json"})
    )


async def _patch(client: httpx.AsyncClient, job: dict[str, Any], start: int, data: bytes) -> httpx.Response:
    return await client.patch(
        f"/api/v4/jobs/{job['id']}/trace?debug_trace=false",
        content=data,
        headers=_job_headers(job["token"], **{
            "Content-Type": "text/plain", "Content-Range": f"{start}-{start + len(data) - 1}",
        }),
    )


async def _final(client: httpx.AsyncClient, job: dict[str, Any]) -> httpx.Response:
    checksum = f"crc32:{zlib.crc32(LOG):08x}"
    body = {"info": INFO, "token": job["token"], "state": "success", "checksum": checksum,
            "output": {"checksum": checksum, "bytesize": len(LOG)}}
    return await client.put(
        f"/api/v4/jobs/{job['id']}", json=body, headers=_job_headers(job["token"], **{"Content-Type": "application/json"})
    )


def _assert_job_payload_types(job: dict[str, Any]) -> None:
    """runner-api.md 3.5 and 3.7: what Go's encoding/json needs to decode the job."""
    assert "run" not in job
    assert _is_int(job["id"]) and isinstance(job["token"], str) and job["token"].startswith("glcbt-")
    assert isinstance(job["allow_git_fetch"], bool)
    info = job["job_info"]
    assert _is_int(info["id"]) and info["id"] == job["id"] and _is_int(info["project_id"])
    assert all(isinstance(info[k], str) for k in ("name", "stage", "project_name", "project_full_path"))
    assert isinstance(info["project_jobs_running_on_instance_runners_count"], str)
    assert isinstance(info["time_in_queue_seconds"], (int, float)) and not isinstance(info["time_in_queue_seconds"], bool)
    assert _is_int(info["queue_size"]) and _is_int(info["queue_depth"])
    git = job["git_info"]
    assert all(isinstance(git[k], str) for k in ("repo_url", "ref", "sha", "before_sha", "ref_type", "repo_object_format"))
    assert isinstance(git["refspecs"], list) and all(isinstance(r, str) for r in git["refspecs"])
    assert _is_int(git["depth"]) and (git["protected"] is None or isinstance(git["protected"], bool))
    assert _is_int(job["runner_info"]["timeout"]) and _is_str_or_null(job["runner_info"]["runner_session_url"])
    for variable in job["variables"]:
        assert isinstance(variable["key"], str) and isinstance(variable["value"], str), variable
        assert isinstance(variable["public"], bool) and isinstance(variable["masked"], bool), variable
        assert all(variable.get(k) is None or isinstance(variable[k], bool) for k in ("file", "raw")), variable
    for step in job["steps"]:
        assert isinstance(step["name"], str) and isinstance(step["when"], str)
        assert isinstance(step["script"], list) and all(isinstance(line, str) for line in step["script"])
        assert _is_int(step["timeout"]) and isinstance(step["allow_failure"], bool)
    for key in ("hooks", "services", "artifacts", "cache", "credentials", "dependencies"):
        assert job[key] is None or isinstance(job[key], list), key
    assert job["image"] is None or isinstance(job["image"], dict)
    assert isinstance(job["features"]["trace_sections"], bool)
    assert all(isinstance(reason, str) for reason in job["features"]["failure_reasons"])


# -- the examples ---------------------------------------------------------------------------------


async def test_example_1_verify_a_glrt_token(live_server) -> None:  # noqa: ANN001
    token = await _runner(live_server)
    info = {**INFO, "features": {**FEATURES_SHELL, "variables": False}}
    del info["executor"]  # the register step sends no executor yet
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        response = await client.post(
            "/api/v4/runners/verify", json={"info": info, "token": token, "system_id": SYSTEM_ID}, headers=_runner_headers(token)
        )
    assert response.status_code == 200 and _media_type(response) == "application/json"
    body = response.json()
    assert set(body) == {"id", "token", "token_expires_at"}
    assert _is_int(body["id"]) and body["id"] > 0  # register requires a non-zero id
    assert body["token"] == token and token.startswith("glrt-t1_") and body["token_expires_at"] is None


async def test_example_2_legacy_registration_with_a_registration_token(live_server) -> None:  # noqa: ANN001
    body = {"description": "py-shell-runner", "tag_list": "linux,shell", "run_untagged": False, "locked": True,
            "paused": False, "info": {**INFO, "executor": "", "shell": ""}, "token": REGISTRATION_TOKEN}
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        response = await client.post("/api/v4/runners", json=body, headers=_runner_headers(REGISTRATION_TOKEN))
        invalid = await client.post(
            "/api/v4/runners", json={**body, "token": "GR1348941wrong"}, headers=_runner_headers("GR1348941wrong")
        )
    assert response.status_code == 201 and _media_type(response) == "application/json"
    created = response.json()
    assert set(created) == {"id", "token", "token_expires_at"}
    assert _is_int(created["id"]) and created["token_expires_at"] is None
    assert re.fullmatch(r"t1_\S+", created["token"]) and not created["token"].startswith("glrt-")
    assert invalid.status_code == 403 and invalid.json() == {"message": "403 Forbidden"}


async def test_example_3_job_request_nothing_to_do(live_server) -> None:  # noqa: ANN001
    token = await _runner(live_server)
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        first = await _job_request(client, token)  # the runner's first poll: where its last_update comes from
        last_update = first.headers["X-GitLab-Last-Update"]
        response = await _job_request(client, token, last_update)
    assert first.status_code == 204
    assert response.status_code == 204 and response.content == b""
    assert response.headers["X-GitLab-Last-Update"] == last_update
    assert re.fullmatch(r"[0-9a-f]{32}", last_update)


async def test_example_4_job_request_job_assigned(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    token = await _runner(live_server)
    make_repo(tmp_path / "repo", JOB_YAML)
    async with httpx.AsyncClient(base_url=live_server.url) as client, live_server.admin() as admin:
        last_update = (await _job_request(client, token)).headers["X-GitLab-Last-Update"]
        project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "repo")})).json()
        await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
        response = await _job_request(client, token, last_update)  # "same request as Example 3"
    assert response.status_code == 201 and _media_type(response) == "application/json"
    job = response.json()
    _assert_job_payload_types(job)
    assert (job["job_info"]["name"], job["job_info"]["stage"]) == ("build", "test")
    assert [s["name"] for s in job["steps"]] == ["script", "after_script"]
    assert job["steps"][0] == {"name": "script", "script": ["echo hello $SECRET"], "timeout": 3600,
                               "when": "on_success", "allow_failure": False}
    assert job["steps"][1]["when"] == "always" and job["steps"][1]["allow_failure"] is True
    variables = {v["key"]: v for v in job["variables"]}
    assert variables["CI_JOB_ID"]["value"] == str(job["id"]) and variables["CI_JOB_ID"]["public"] is True
    assert variables["CI_JOB_TOKEN"] == {**variables["CI_JOB_TOKEN"], "value": job["token"], "public": False, "masked": True}
    assert variables["GIT_STRATEGY"]["value"] == "none"


async def test_example_5_acknowledge_the_job(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    job = await _assigned_job(live_server, tmp_path)
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        response = await _ack(client, job)
    assert response.status_code == 200 and response.headers["Job-Status"] == "running"
    assert response.text == "200"


async def test_example_6_first_log_chunk(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    job = await _assigned_job(live_server, tmp_path)
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        await _ack(client, job)
        response = await _patch(client, job, 0, CHUNK_1)
    assert response.request.headers["Content-Length"] == "347"
    assert response.request.headers["Content-Range"] == "0-346"
    assert response.status_code == 202
    assert response.headers["Job-Status"] == "running"
    assert response.headers["Range"] == "0-347"
    assert response.headers["X-GitLab-Trace-Update-Interval"] == "3"


async def test_example_7_416_resending_a_chunk_the_server_already_has(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    job = await _assigned_job(live_server, tmp_path)
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        await _ack(client, job)
        assert (await _patch(client, job, 0, CHUNK_1)).status_code == 202  # its answer "was lost"
        resent = await _patch(client, job, 0, CHUNK_1)
        offset = int(resent.headers["Range"].split("-")[1])  # what the runner does with it
        following = await _patch(client, job, offset, CHUNK_2)
        beyond = await _patch(client, job, 1000, b"x")  # the mirror case: the server has less
    assert resent.status_code == 416 and _media_type(resent) == "application/json"
    assert resent.headers["Range"] == "0-347" and resent.json() == {"message": "416 Range Not Satisfiable"}
    assert following.request.headers["Content-Range"] == "347-840"
    assert following.request.headers["Content-Length"] == "494"
    assert following.status_code == 202
    assert following.headers["Job-Status"] == "running"
    assert following.headers["Range"] == "0-841"
    assert following.headers["X-GitLab-Trace-Update-Interval"] == "3"
    assert beyond.status_code == 416 and beyond.headers["Range"] == "0-841"


async def test_example_8_keep_alive_put_during_a_quiet_period(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    job = await _assigned_job(live_server, tmp_path)
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        await _ack(client, job)
        assert (await _patch(client, job, 0, CHUNK_1)).status_code == 202
        body = {"info": INFO, "token": job["token"], "state": "running", "checksum": "crc32:35800173",
                "output": {"checksum": "crc32:35800173", "bytesize": 347}}
        response = await client.put(
            f"/api/v4/jobs/{job['id']}", json=body, headers=_job_headers(job["token"], **{"Content-Type": "application/json"})
        )
    assert response.status_code == 200 and response.headers["Job-Status"] == "running"
    assert response.text == "200"


async def test_example_10_final_update_with_the_accept_backoff_dance(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    """Conveyor answers 202 while stored bytes < output.bytesize: the runner PATCHes the rest, PUTs again."""
    job = await _assigned_job(live_server, tmp_path)
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        await _ack(client, job)
        assert (await _patch(client, job, 0, CHUNK_1)).status_code == 202
        accepted = await _final(client, job)
        assert (await _patch(client, job, len(CHUNK_1), CHUNK_2)).status_code == 202
        done = await _final(client, job)  # the identical PUT
    assert accepted.status_code == 202
    assert accepted.headers["Job-Status"] == "running"
    assert accepted.headers["X-GitLab-Trace-Update-Interval"] == "1"
    assert accepted.text == "202"
    assert done.status_code == 200 and done.headers["Job-Status"] == "success" and done.text == "200"
    async with live_server.admin() as admin:
        log = await admin.get(f"/api/v4/projects/{job['project_id']}/jobs/{job['id']}/trace")
    assert log.content == LOG


async def _cancel(live, job: dict[str, Any]) -> str:  # noqa: ANN001
    async with live.admin() as admin:
        response = await admin.post(f"/api/v4/projects/{job['project_id']}/jobs/{job['id']}/cancel")
    assert response.status_code == 201  # GitLab (rest-api.md 2.6): job cancel answers 201
    return response.json()["status"]


async def test_example_11_graceful_cancellation(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    job = await _assigned_job(live_server, tmp_path)  # the runner advertised cancel_gracefully
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        await _ack(client, job)
        assert (await _patch(client, job, 0, CHUNK_1)).status_code == 202
        assert await _cancel(live_server, job) == "canceling"
        during = await _patch(client, job, len(CHUNK_1), CHUNK_2)
        tail = b"WARNING: script canceled externally (UI, API)\n"
        await _patch(client, job, len(LOG), tail)
        total = LOG + tail
        checksum = f"crc32:{zlib.crc32(total):08x}"
        final = await client.put(
            f"/api/v4/jobs/{job['id']}",
            json={"info": INFO, "token": job["token"], "state": "failed", "failure_reason": "unknown_failure",
                  "checksum": checksum, "output": {"checksum": checksum, "bytesize": len(total)}},
            headers=_job_headers(job["token"], **{"Content-Type": "application/json"}),
        )
    assert during.status_code == 202
    assert during.headers["Job-Status"] == "canceling"
    assert during.headers["Range"] == "0-841"
    assert during.headers["X-GitLab-Trace-Update-Interval"] == "3"
    assert final.status_code == 200 and final.headers["Job-Status"] == "canceled" and final.text == "200"


async def test_example_12_hard_cancellation(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    job = await _assigned_job(live_server, tmp_path)
    async with live_server.services.engine.begin() as conn:  # this runner manager cannot cancel gracefully
        await conn.execute(sa.text("UPDATE runner_managers SET features = '{}'::jsonb"))
        await conn.execute(sa.text("UPDATE runners SET features = '{}'::jsonb"))
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        await _ack(client, job)
        await _patch(client, job, 0, CHUNK_1)
        await _patch(client, job, len(CHUNK_1), CHUNK_2)
        assert await _cancel(live_server, job) == "canceled"
        refused = await _patch(client, job, len(LOG), b"x" * 183)
        final = await _final(client, job)
    assert refused.request.headers["Content-Range"] == "841-1023"
    assert refused.status_code == 403
    assert _media_type(refused) == "application/json"
    assert refused.headers["Job-Status"] == "canceled"
    assert refused.json() == {"message": "403 Forbidden - Job is not processing on runner"}
    assert final.status_code == 403 and final.headers["Job-Status"] == "canceled"


async def _chunked_multipart(data: bytes, boundary: str = "2f1c6a0e9d8b7c6a5f4e3d2c1b0a"):  # noqa: ANN202
    yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"artifacts.zip\"\r\n"
           "Content-Type: application/octet-stream\r\n\r\n").encode()
    for start in range(0, len(data), 4096):
        yield data[start : start + 4096]
    yield f"\r\n--{boundary}--\r\n".encode()


async def test_example_9_artifact_upload(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    job = await _assigned_job(live_server, tmp_path)
    archive = b"PK\x03\x04" + bytes(range(256)) * 64
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        await _ack(client, job)
        response = await client.post(
            f"/api/v4/jobs/{job['id']}/artifacts?artifact_format=zip&artifact_type=archive&expire_in=1+week",
            content=_chunked_multipart(archive),
            headers=_job_headers(job["token"], **{"Content-Type": "multipart/form-data; boundary=2f1c6a0e9d8b7c6a5f4e3d2c1b0a"}),
        )
    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert response.status_code == 201 and response.text == "201"


async def test_example_13_download_a_dependency_s_artifacts(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    job = await _assigned_job(live_server, tmp_path)
    archive = b"PK\x03\x04" + b"dependency" * 100
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        await _ack(client, job)
        await client.post(
            f"/api/v4/jobs/{job['id']}/artifacts?artifact_format=zip&artifact_type=archive",
            content=_chunked_multipart(archive),
            headers=_job_headers(job["token"], **{"Content-Type": "multipart/form-data; boundary=2f1c6a0e9d8b7c6a5f4e3d2c1b0a"}),
        )
        response = await client.get(f"/api/v4/jobs/{job['id']}/artifacts?direct_download=true", headers=_job_headers(job["token"]))
        missing = await client.get(f"/api/v4/jobs/{job['id'] + 1000}/artifacts", headers=_job_headers(job["token"]))
    assert response.status_code == 200
    assert _media_type(response) == "application/zip"
    assert response.headers["Content-Disposition"] == 'attachment; filename="artifacts.zip"'
    assert response.content == archive
    assert missing.status_code == 404


async def test_example_14_unregister_a_runner_manager(live_server) -> None:  # noqa: ANN001
    token = await _runner(live_server)
    body = {"token": token, "system_id": SYSTEM_ID}
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        assert (await client.post("/api/v4/runners/verify", json={**body, "info": INFO})).status_code == 200
        headers = {"Content-Type": "application/json", "RUNNER-TOKEN": token}
        response = await client.request("DELETE", "/api/v4/runners/managers", json=body, headers=headers)
        again = await client.request("DELETE", "/api/v4/runners/managers", json=body, headers=headers)
    assert response.status_code == 204 and response.content == b""
    assert again.status_code == 404 and again.json() == {"message": "404 Runner manager not found"}
