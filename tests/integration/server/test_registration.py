"""Runner registration and lifecycle (runner-api.md 2) over real HTTP against a live server."""

from __future__ import annotations

import hashlib
import re

import httpx
import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.integration

REGISTRATION_TOKEN = "GR1348941conveyor-test-registration"
INFO = {
    "name": "gitlab-runner", "version": "19.4.0", "revision": "d79f3e7b", "platform": "linux",
    "architecture": "amd64", "executor": "shell", "shell": "bash",
    "features": {"cancel_gracefully": True, "two_phase_job_commit": True, "trace_checksum": True},
    "config": {"gpus": ""},
}


@pytest.fixture
def server_settings(server_settings, request):  # noqa: ANN001, ANN201
    """The registration token is set unless a test parametrizes ``server_settings`` with None."""
    token = getattr(request, "param", REGISTRATION_TOKEN)
    return server_settings.with_overrides(runner_registration_token=token)


async def _create(live, **body) -> dict:  # noqa: ANN001, ANN003
    async with live.admin() as admin:
        response = await admin.post("/api/v4/user/runners", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def _call(live, method: str, path: str, body: dict) -> httpx.Response:  # noqa: ANN001
    async with httpx.AsyncClient(base_url=live.url) as client:
        return await client.request(method, f"/api/v4{path}", json=body)


async def _rows(live, query: str, **params) -> list[dict]:  # noqa: ANN001, ANN003
    async with live.services.engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(sa.text(query), params)).mappings()]


async def _sql(live, statement: str, **params) -> None:  # noqa: ANN001, ANN003
    async with live.services.engine.begin() as conn:
        await conn.execute(sa.text(statement), params)


def _is_json(response: httpx.Response) -> bool:
    return response.headers["content-type"].split(";")[0].strip() == "application/json"


# -- POST /user/runners ---------------------------------------------------------------------------


async def test_create_runner_stores_its_settings_and_only_the_token_digest(live_server) -> None:  # noqa: ANN001
    created = await _create(
        live_server, runner_type="instance_type", description="docker box", tag_list=["docker", "linux, arm64", "docker"],
        run_untagged=False, locked=True, paused=True, access_level="ref_protected", maximum_timeout=3600,
    )
    assert set(created) == {"id", "token", "token_expires_at"}
    assert type(created["id"]) is int and created["token_expires_at"] is None
    assert re.fullmatch(r"glrt-t1_[A-Za-z0-9_-]{40,}", created["token"])
    [row] = await _rows(live_server, "SELECT * FROM runners WHERE id = :id", id=created["id"])
    assert row["token_hash"] == hashlib.sha256(created["token"].encode()).hexdigest()
    assert {k: row[k] for k in ("description", "runner_type", "tag_list", "run_untagged", "locked", "paused",
                                "access_level", "maximum_timeout")} == {
        "description": "docker box", "runner_type": "instance_type", "tag_list": ["docker", "linux", "arm64"],
        "run_untagged": False, "locked": True, "paused": True, "access_level": "ref_protected", "maximum_timeout": 3600,
    }
    dump = await _rows(live_server, "SELECT * FROM runners")
    assert created["token"] not in repr(dump)


async def test_create_runner_defaults_and_comma_separated_tags(live_server) -> None:  # noqa: ANN001
    async with live_server.admin() as admin:
        bare = await admin.post("/api/v4/user/runners")  # no body at all
        tagged = await admin.post("/api/v4/user/runners", json={"tag_list": "a, b,,a"})
    assert bare.status_code == 201 and _is_json(bare)
    [row] = await _rows(live_server, "SELECT * FROM runners WHERE id = :id", id=bare.json()["id"])
    assert (row["runner_type"], row["run_untagged"], row["paused"], row["access_level"], row["tag_list"]) == (
        "instance_type", True, False, "not_protected", [])
    [row] = await _rows(live_server, "SELECT tag_list FROM runners WHERE id = :id", id=tagged.json()["id"])
    assert row["tag_list"] == ["a", "b"]


@pytest.mark.parametrize("body", [
    {"access_level": "everything"},
    {"maximum_timeout": 300},
    {"run_untagged": False},
    {"run_untagged": False, "tag_list": " , "},
    {"runner_type": "project_type"},
    {"runner_type": "bogus"},
    {"paused": "sometimes"},
])
async def test_create_runner_rejects_invalid_settings_with_400(live_server, body: dict) -> None:  # noqa: ANN001
    async with live_server.admin() as admin:
        response = await admin.post("/api/v4/user/runners", json=body)
    assert response.status_code == 400, response.text
    assert await _rows(live_server, "SELECT id FROM runners") == []


async def test_create_runner_needs_an_admin_token(live_server) -> None:  # noqa: ANN001
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        response = await client.post("/api/v4/user/runners", json={}, headers={"PRIVATE-TOKEN": "glpat-nope"})
    assert response.status_code == 401 and response.json() == {"message": "401 Unauthorized"}


# -- legacy POST /runners -------------------------------------------------------------------------


async def test_legacy_registration_issues_an_unprefixed_token(live_server) -> None:  # noqa: ANN001
    response = await _call(live_server, "POST", "/runners", {
        "token": REGISTRATION_TOKEN, "description": "legacy", "tag_list": "linux,shell", "run_untagged": False,
        "locked": True, "paused": False, "access_level": "not_protected", "maximum_timeout": 7200,
        "info": {**INFO, "executor": "", "shell": ""},
    })
    assert response.status_code == 201 and _is_json(response)
    body = response.json()
    assert set(body) == {"id", "token", "token_expires_at"} and body["token_expires_at"] is None
    assert re.fullmatch(r"t1_[A-Za-z0-9_-]{40,}", body["token"]) and not body["token"].startswith("glrt-")
    [row] = await _rows(live_server, "SELECT * FROM runners WHERE id = :id", id=body["id"])
    assert row["token_hash"] == hashlib.sha256(body["token"].encode()).hexdigest()
    assert (row["description"], row["tag_list"], row["run_untagged"], row["locked"], row["maximum_timeout"]) == (
        "legacy", ["linux", "shell"], False, True, 7200)
    verified = await _call(live_server, "POST", "/runners/verify", {"token": body["token"], "system_id": "s_0123456789ab"})
    assert verified.status_code == 200 and verified.json()["id"] == body["id"]


async def test_legacy_registration_rejects_a_wrong_token_with_403(live_server) -> None:  # noqa: ANN001
    for token in ("GR1348941wrong", REGISTRATION_TOKEN + "x", ""):
        response = await _call(live_server, "POST", "/runners", {"token": token, "run_untagged": False})
        assert response.status_code == 403 and response.json() == {"message": "403 Forbidden"}
    missing = await _call(live_server, "POST", "/runners", {"description": "no token"})
    assert missing.status_code == 400
    assert await _rows(live_server, "SELECT id FROM runners") == []


@pytest.mark.parametrize("server_settings", [None], indirect=True)
async def test_legacy_registration_is_gone_without_a_registration_token(live_server) -> None:  # noqa: ANN001
    response = await _call(live_server, "POST", "/runners", {"token": REGISTRATION_TOKEN})
    assert response.status_code == 410 and response.json() == {"message": "410 Gone"}


async def test_legacy_registration_accepts_active_and_system_id(live_server) -> None:  # noqa: ANN001
    response = await _call(live_server, "POST", "/runners", {
        "token": REGISTRATION_TOKEN, "active": False, "system_id": "r_abcdefABCDEF", "info": INFO,
    })
    assert response.status_code == 201
    runner_id = response.json()["id"]
    [row] = await _rows(live_server, "SELECT paused FROM runners WHERE id = :id", id=runner_id)
    assert row["paused"] is True
    managers = await _rows(live_server, "SELECT system_id, version FROM runner_managers WHERE runner_id = :id", id=runner_id)
    assert managers == [{"system_id": "r_abcdefABCDEF", "version": "19.4.0"}]
    both = await _call(live_server, "POST", "/runners", {"token": REGISTRATION_TOKEN, "active": True, "paused": True})
    assert both.status_code == 400
    untagged = await _call(live_server, "POST", "/runners", {"token": REGISTRATION_TOKEN, "run_untagged": False})
    assert untagged.status_code == 400


# -- POST /runners/verify and runner managers ----------------------------------------------------


async def test_verify_answers_json_and_records_the_manager(live_server) -> None:  # noqa: ANN001
    runner = await _create(live_server)
    ok = await _call(live_server, "POST", "/runners/verify", {"token": runner["token"], "system_id": "s_0123456789ab", "info": INFO})
    assert ok.status_code == 200 and _is_json(ok)
    assert ok.json() == {"id": runner["id"], "token": runner["token"], "token_expires_at": None}
    [manager] = await _rows(live_server, "SELECT * FROM runner_managers WHERE runner_id = :id", id=runner["id"])
    assert {k: manager[k] for k in ("system_id", "version", "revision", "platform", "architecture", "executor")} == {
        "system_id": "s_0123456789ab", "version": "19.4.0", "revision": "d79f3e7b", "platform": "linux",
        "architecture": "amd64", "executor": "shell",
    }
    assert manager["features"]["cancel_gracefully"] is True and manager["features"]["image"] is False
    assert manager["contacted_at"] is not None
    # verify always stores the latest info (no throttle: GitLab learns features at once)
    newer = {**INFO, "version": "19.5.0", "features": {"cancel_gracefully": False}}
    await _call(live_server, "POST", "/runners/verify", {"token": runner["token"], "system_id": "s_0123456789ab", "info": newer})
    [manager] = await _rows(live_server, "SELECT * FROM runner_managers WHERE runner_id = :id", id=runner["id"])
    assert manager["version"] == "19.5.0" and manager["features"]["cancel_gracefully"] is False


async def test_verify_rejects_unknown_and_expired_tokens(live_server) -> None:  # noqa: ANN001
    runner = await _create(live_server)
    unknown = await _call(live_server, "POST", "/runners/verify", {"token": "glrt-t1_unknown"})
    assert unknown.status_code == 403 and unknown.json() == {"message": "403 Forbidden"}
    assert (await _call(live_server, "POST", "/runners/verify", {})).status_code == 400
    await _sql(live_server, "UPDATE runners SET token_expires_at = '2100-01-01T00:00:00Z' WHERE id = :id", id=runner["id"])
    future = await _call(live_server, "POST", "/runners/verify", {"token": runner["token"]})
    assert future.status_code == 200 and future.json()["token_expires_at"] == "2100-01-01T00:00:00.000Z"
    await _sql(live_server, "UPDATE runners SET token_expires_at = now() - interval '1 second' WHERE id = :id", id=runner["id"])
    expired = await _call(live_server, "POST", "/runners/verify", {"token": runner["token"]})
    assert expired.status_code == 403


async def test_requests_without_system_id_share_the_legacy_manager(live_server) -> None:  # noqa: ANN001
    runner = await _create(live_server)
    assert (await _call(live_server, "POST", "/runners/verify", {"token": runner["token"]})).status_code == 200
    assert (await _call(live_server, "POST", "/jobs/request", {"token": runner["token"]})).status_code == 204
    managers = await _rows(live_server, "SELECT system_id FROM runner_managers WHERE runner_id = :id", id=runner["id"])
    assert managers == [{"system_id": "<legacy>"}]


async def test_job_requests_upsert_managers_at_most_once_a_minute(live_server) -> None:  # noqa: ANN001
    runner = await _create(live_server)
    body = {"token": runner["token"], "system_id": "s_aaaaaaaaaaaa", "info": INFO}
    assert (await _call(live_server, "POST", "/jobs/request", body)).status_code == 204
    [first] = await _rows(live_server, "SELECT * FROM runner_managers WHERE runner_id = :id", id=runner["id"])
    assert first["system_id"] == "s_aaaaaaaaaaaa" and first["executor"] == "shell" and first["contacted_at"]
    upgraded = {**body, "info": {**INFO, "version": "19.5.0"}}
    assert (await _call(live_server, "POST", "/jobs/request", upgraded)).status_code == 204
    [again] = await _rows(live_server, "SELECT * FROM runner_managers WHERE runner_id = :id", id=runner["id"])
    assert again["contacted_at"] == first["contacted_at"] and again["version"] == "19.4.0"
    # a minute later the next request refreshes contact time and info
    await _sql(live_server, "UPDATE runner_managers SET contacted_at = now() - interval '2 minutes'")
    assert (await _call(live_server, "POST", "/jobs/request", upgraded)).status_code == 204
    [later] = await _rows(live_server, "SELECT * FROM runner_managers WHERE runner_id = :id", id=runner["id"])
    assert later["version"] == "19.5.0" and later["contacted_at"] > first["contacted_at"] and later["id"] == first["id"]
    # a second process with the same token is a second manager
    await _call(live_server, "POST", "/jobs/request", {**body, "system_id": "s_bbbbbbbbbbbb"})
    managers = await _rows(live_server, "SELECT system_id FROM runner_managers ORDER BY id")
    assert [m["system_id"] for m in managers] == ["s_aaaaaaaaaaaa", "s_bbbbbbbbbbbb"]


async def test_authenticating_a_recent_manager_is_one_statement(live_server) -> None:  # noqa: ANN001
    from conveyor.protocol import RunnerInfo

    runner = await _create(live_server)
    runners, observer = live_server.services.runners, live_server.services.observer
    info = RunnerInfo.model_validate(INFO)
    await runners.authenticate(runner["token"], "s_0123456789ab", info)  # first contact: writes
    before = observer.statements
    await runners.authenticate(runner["token"], "s_0123456789ab", info)
    assert observer.statements - before == 1  # runner and manager in one SELECT, no heartbeat write


async def test_authenticate_returns_the_runner_and_its_manager(live_server) -> None:  # noqa: ANN001
    runner = await _create(live_server, tag_list="docker,linux", access_level="ref_protected", paused=True)
    from conveyor.protocol import RunnerInfo

    runners = live_server.services.runners
    context = await runners.authenticate(runner["token"], "s_0123456789ab", RunnerInfo.model_validate(INFO))
    [manager] = await _rows(live_server, "SELECT id FROM runner_managers")
    assert context["id"] == context.id == runner["id"]
    assert context["manager_id"] == manager["id"] and context["system_id"] == "s_0123456789ab"
    assert context["tag_list"] == ("docker", "linux") and context["run_untagged"] is True
    assert context["paused"] is True and context["access_level"] == "ref_protected"
    assert context["features"]["cancel_gracefully"] is True
    assert "manager_id" in context.keys() and "token_hash" not in context
    again = await runners.authenticate(runner["token"], "s_0123456789ab", None)  # stored features, no write
    assert again.manager_id == manager["id"] and again.features["cancel_gracefully"] is True


async def test_a_paused_runner_authenticates_and_gets_no_job(live_server) -> None:  # noqa: ANN001
    runner = await _create(live_server, paused=True)
    assert (await _call(live_server, "POST", "/runners/verify", {"token": runner["token"]})).status_code == 200
    polled = await _call(live_server, "POST", "/jobs/request", {"token": runner["token"], "system_id": "s_0123456789ab"})
    assert polled.status_code == 204


# -- DELETE /runners, DELETE /runners/managers ------------------------------------------------------


async def test_unregister_deletes_the_runner_and_its_managers(live_server) -> None:  # noqa: ANN001
    runner = await _create(live_server)
    await _call(live_server, "POST", "/runners/verify", {"token": runner["token"], "system_id": "s_0123456789ab"})
    deleted = await _call(live_server, "DELETE", "/runners", {"token": runner["token"]})
    assert deleted.status_code == 204 and deleted.content == b""
    assert await _rows(live_server, "SELECT id FROM runners") == []
    assert await _rows(live_server, "SELECT id FROM runner_managers") == []
    assert (await _call(live_server, "POST", "/runners/verify", {"token": runner["token"]})).status_code == 403
    again = await _call(live_server, "DELETE", "/runners", {"token": runner["token"]})
    assert again.status_code == 403 and again.json() == {"message": "403 Forbidden"}
    assert (await _call(live_server, "DELETE", "/runners", {})).status_code == 400


async def test_unregister_manager_deletes_only_that_manager(live_server) -> None:  # noqa: ANN001
    runner = await _create(live_server)
    for system_id in ("s_aaaaaaaaaaaa", "s_bbbbbbbbbbbb"):
        await _call(live_server, "POST", "/runners/verify", {"token": runner["token"], "system_id": system_id})
    body = {"token": runner["token"], "system_id": "s_aaaaaaaaaaaa"}
    deleted = await _call(live_server, "DELETE", "/runners/managers", body)
    assert deleted.status_code == 204 and deleted.content == b""
    managers = await _rows(live_server, "SELECT system_id FROM runner_managers")
    assert managers == [{"system_id": "s_bbbbbbbbbbbb"}]
    assert await _rows(live_server, "SELECT id FROM runners") == [{"id": runner["id"]}]
    missing = await _call(live_server, "DELETE", "/runners/managers", body)
    assert missing.status_code == 404 and missing.json() == {"message": "404 Runner manager not found"}
    forbidden = await _call(live_server, "DELETE", "/runners/managers", {**body, "token": "glrt-t1_wrong"})
    assert forbidden.status_code == 403 and forbidden.json() == {"message": "403 Forbidden"}
    no_system_id = await _call(live_server, "DELETE", "/runners/managers", {"token": runner["token"]})
    assert no_system_id.status_code == 400


# -- POST /runners/reset_authentication_token ----------------------------------------------------


async def test_reset_token_invalidates_the_old_one_at_once(live_server) -> None:  # noqa: ANN001
    runner = await _create(live_server)
    await _call(live_server, "POST", "/runners/verify", {"token": runner["token"], "system_id": "s_0123456789ab"})
    reset = await _call(live_server, "POST", "/runners/reset_authentication_token", {"token": runner["token"]})
    assert reset.status_code == 201 and _is_json(reset)
    body = reset.json()
    assert set(body) == {"token", "token_expires_at"} and body["token_expires_at"] is None
    assert body["token"].startswith("glrt-t1_") and body["token"] != runner["token"]
    for path in ("/runners/verify", "/jobs/request", "/runners/reset_authentication_token"):
        stale = await _call(live_server, "POST", path, {"token": runner["token"]})
        assert stale.status_code == 403, path
    verified = await _call(live_server, "POST", "/runners/verify", {"token": body["token"]})
    assert verified.status_code == 200 and verified.json()["id"] == runner["id"]
    [row] = await _rows(live_server, "SELECT token_hash FROM runners")
    assert row["token_hash"] == hashlib.sha256(body["token"].encode()).hexdigest()
    # the runner keeps its managers
    managers = await _rows(live_server, "SELECT system_id FROM runner_managers ORDER BY id")
    assert managers[0] == {"system_id": "s_0123456789ab"}


async def test_reset_keeps_the_token_kind_and_rejects_unknown_tokens(live_server) -> None:  # noqa: ANN001
    legacy = (await _call(live_server, "POST", "/runners", {"token": REGISTRATION_TOKEN})).json()
    reset = await _call(live_server, "POST", "/runners/reset_authentication_token", {"token": legacy["token"]})
    assert reset.status_code == 201 and re.fullmatch(r"t1_[A-Za-z0-9_-]{40,}", reset.json()["token"])
    unknown = await _call(live_server, "POST", "/runners/reset_authentication_token", {"token": "t1_unknown"})
    assert unknown.status_code == 403 and unknown.json() == {"message": "403 Forbidden"}
