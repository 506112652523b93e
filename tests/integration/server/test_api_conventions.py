"""GitLab's conventions over real sockets, as ``curl`` sends them: form-encoded and multipart bodies
(runner registration, pipeline creation, variables), the query string, request body limits
enforced before the body is read or any token checked, and Grape's error bodies."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography.fernet import Fernet

from conveyor.protocol import keepalive
from tests.plugins.repos import make_repo

pytestmark = pytest.mark.integration

REGISTRATION = "glrt-registration-for-curl"
LIMIT = 256 * 1024
MIB = 1024 * 1024


@pytest.fixture
def server_settings(server_settings):  # noqa: ANN001, ANN201
    return server_settings.with_overrides(
        runner_registration_token=REGISTRATION, secrets_key=Fernet.generate_key().decode(), api_body_limit=LIMIT
    )


def _form(**fields: str) -> dict[str, tuple[None, str]]:
    """``curl --form k=v``: multipart fields without files."""
    return {name: (None, value) for name, value in fields.items()}


async def test_runner_registration_by_form_and_multipart(live_server) -> None:  # noqa: ANN001
    async with httpx.AsyncClient(base_url=live_server.url) as curl:
        # curl --request POST "$URL/api/v4/runners" --form "token=..." --form "description=..." --form "tag_list=a,b"
        made = await curl.post("/api/v4/runners", files=_form(token=REGISTRATION, description="by form", tag_list="a,b", run_untagged="false"))
        assert made.status_code == 201, made.text
        runner = made.json()
        assert set(runner) >= {"id", "token", "token_expires_at"} and runner["token"].startswith("glrt-") or runner["token"].startswith("t1_")
        # curl --data "token=..." (form-encoded), with the runner's info as a nested hash
        verified = await curl.post("/api/v4/runners/verify", data={"token": runner["token"], "system_id": "s_0123456789ab", "info[name]": "gitlab-runner"})
        assert verified.status_code == 200 and verified.json()["id"] == runner["id"]
        refused = await curl.post("/api/v4/runners", data={"token": "wrong"})
        assert (refused.status_code, refused.json()) == (403, {"message": "403 Forbidden"})
        missing = await curl.post("/api/v4/runners/verify", data={})
        assert (missing.status_code, missing.json()) == (400, {"error": "token is missing"})
        # a job request by form: nothing queued (204), as with JSON
        polled = await curl.post("/api/v4/jobs/request", data={"token": runner["token"]})
        assert polled.status_code == 204
        assert (await curl.request("DELETE", "/api/v4/runners", data={"token": runner["token"]})).status_code == 204
        assert (await curl.post("/api/v4/runners/verify", data={"token": runner["token"]})).status_code == 403


async def test_pipeline_and_variables_by_form_multipart_and_query(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    make_repo(tmp_path / "repo", "show:\n  script: [echo $A]\n")
    async with live_server.admin() as curl:
        project = (await curl.post("/api/v4/projects", data={"source": str(tmp_path / "repo"), "name": "curl-app"})).json()
        assert project["path_with_namespace"] == "root/curl-app"
        base = "/api/v4/projects/root%2Fcurl-app"
        # POST .../pipeline?ref=main (GitLab's doc example), then form-encoded variables
        by_query = await curl.post(f"{base}/pipeline?ref=main")
        assert by_query.status_code == 201 and by_query.json()["ref"] == "main"
        by_form = await curl.post(f"{base}/pipeline", data={"ref": "main", "variables[0][key]": "A", "variables[0][value]": "1"})
        assert by_form.status_code == 201
        by_multipart = await curl.post(f"{base}/pipeline", files=_form(ref="main"))
        assert by_multipart.status_code == 201
        assert len({by_query.json()["id"], by_form.json()["id"], by_multipart.json()["id"]}) == 3
        # variables: curl --form, and curl --data
        created = await curl.post(f"{base}/variables", files=_form(key="TOKEN_A", value="value-aaaa", protected="true"))
        assert created.status_code == 201 and (created.json()["key"], created.json()["protected"]) == ("TOKEN_A", True)
        data = await curl.post(f"{base}/variables", data={"key": "TOKEN_B", "value": "b", "masked": "false"})
        assert data.status_code == 201 and data.json()["masked"] is False
        changed = await curl.put(f"{base}/variables/TOKEN_B", data={"value": "c"})
        assert changed.status_code == 200 and changed.json()["value"] == "c"
        invalid = await curl.post(f"{base}/variables", data={"key": "X", "value": "v", "protected": "maybe"})
        assert (invalid.status_code, invalid.json()) == (400, {"error": "protected is invalid"})


def _raw_request(url: str, head: str, body: bytes, *, wait: float = 10.0) -> tuple[bytes, float]:
    """Send ``head`` and as much of ``body`` as the server takes; return its answer and when it came."""
    where = urlsplit(url)
    sock = keepalive.apply(socket.create_connection((where.hostname, where.port), timeout=wait), keepalive.KeepaliveConfig())
    started = time.monotonic()
    try:
        sock.sendall(head.encode())
        try:
            for start in range(0, len(body), 64 * 1024):
                sock.sendall(body[start : start + 64 * 1024])
        except OSError:  # the server answered and closed while we were still sending
            pass
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            piece = sock.recv(65536)
            if not piece:
                break
            answer += piece
        return answer, time.monotonic() - started
    finally:
        sock.close()


async def test_oversized_bodies_are_refused_before_reading_or_authenticating(live_server) -> None:  # noqa: ANN001
    import asyncio

    url = live_server.url
    # a declared 50 MiB JSON body with a wrong token: 413 at once, from the headers alone
    head = (
        "POST /api/v4/projects/1/variables HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: glpat-wrong\r\n"
        f"Content-Type: application/json\r\nContent-Length: {50 * MIB}\r\n\r\n"
    )
    answer, took = await asyncio.to_thread(_raw_request, url, head, b"{" + b" " * 1024)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"message":"413 Request Entity Too Large' in answer and took < 5
    # chunked (no Content-Length): cut off once the bytes pass the limit, also before the token
    chunk = b" " * (64 * 1024)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(50 * MIB // len(chunk)))
    head = (
        "POST /api/v4/runners HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    answer, took = await asyncio.to_thread(_raw_request, url, head, b"1\r\n{\r\n" + chunks)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    # within the limit all is as before; a form body is limited alike
    async with httpx.AsyncClient(base_url=url) as client:
        small = await client.post("/api/v4/runners", json={"token": "wrong", "description": "d" * (LIMIT // 2)})
        assert small.status_code == 403
        big_form = await client.post("/api/v4/runners", data={"token": REGISTRATION, "description": "d" * (LIMIT + 1)})
        assert big_form.status_code == 413
        assert (await client.get("/api/v4/jobs/request")).json() == {"error": "405 Method Not Allowed"}
        assert (await client.get("/api/v4/version")).json() == {"message": "401 Unauthorized"}
    async with live_server.admin() as admin:
        meta = (await admin.get("/api/v4/metadata")).json()
        assert meta["version"] == "17.11.0" and meta["kas"] == {"enabled": False, "externalUrl": None, "version": None}
