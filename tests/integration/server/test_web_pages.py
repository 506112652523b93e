"""The web pages over real HTTP (no browser): sign-in, pagination and filters, errors as pages,
security headers, and the log viewer's reads (numbered ranges, a line's neighbourhood, search)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.integration.server.test_viewer import claim_job
from tests.plugins.live import ROOT_TOKEN

pytestmark = pytest.mark.integration


async def signed_in(url: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=url, timeout=30)
    refused = await client.post("/-/login", data={"token": "glpat-nope"}, headers={"Origin": url})
    assert refused.status_code == 401 and "Invalid personal access token" in refused.text
    response = await client.post("/-/login", data={"token": ROOT_TOKEN, "next": "//evil.example/"}, headers={"Origin": url})
    assert response.status_code == 303 and response.headers["location"] == "/-/"  # no open redirect
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    return client


async def test_pages_pagination_filters_errors_and_headers(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    project, runner = await claim_job(live_server.url, tmp_path)
    async with live_server.services.engine.begin() as conn:
        for n in range(55):
            await conn.execute(sa.text(
                "INSERT INTO pipelines (project_id, ref, sha, status) VALUES (:p, :r, 'abcdef0123456789', :s)"),
                {"p": project["id"], "r": "feature" if n % 5 == 0 else "main", "s": "failed" if n % 2 else "success"})
    async with httpx.AsyncClient(base_url=live_server.url) as anonymous:
        page = await anonymous.get("/-/", headers={"Accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"] == "/-/login?next=/-/"
        assert (await anonymous.get("/")).headers["location"] == "/-/"
        assert (await anonymous.get(f"/-/projects/{project['id']}/jobs/1/log/tail")).status_code == 401
    client = await signed_in(live_server.url)
    listing = await client.get(f"/-/projects/{project['id']}/pipelines")
    assert listing.status_code == 200 and listing.text.count("<tr>") == 51  # header + 50
    assert "abcdef01</code>" in listing.text
    for name in ("content-security-policy", "x-content-type-options", "referrer-policy", "cross-origin-opener-policy"):
        assert name in listing.headers
    older = re.search(r'href="\?ref=&amp;status=&amp;before=(\d+)"', listing.text)
    assert older
    second = await client.get(f"/-/projects/{project['id']}/pipelines?before={older.group(1)}")
    assert second.text.count("<tr>") == 1 + 6 and "Older pipelines" not in second.text
    feature = await client.get(f"/-/projects/{project['id']}/pipelines?ref=feature&status=failed")
    assert feature.text.count("<tr>") == 1 + 5  # n % 5 == 0 and odd: 5, 15, 25, 35, 45
    bad = await client.get(f"/-/projects/{project['id']}/pipelines?status=nonsense")
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("text/html")
    assert "status does not have a valid value" in bad.text
    missing = await client.get("/-/projects/404/pipelines")
    assert missing.status_code == 404 and "Not Found" in missing.text and missing.headers["content-type"].startswith("text/html")
    static = await client.get("/-/static/log-viewer.js")
    assert static.status_code == 200 and static.headers["cache-control"] == "no-cache"
    # GitLab's web addresses (the API's web_url, CI_PIPELINE_URL, CI_JOB_URL) lead to the pages
    path = (await client.get(f"/api/v4/projects/{project['id']}", headers={"PRIVATE-TOKEN": ROOT_TOKEN})).json()["path_with_namespace"]
    for kind, item in (("pipelines", 3), ("jobs", 1)):
        moved = await client.get(f"/{path}/-/{kind}/{item}")
        assert moved.status_code == 302 and moved.headers["location"] == f"/-/projects/{project['id']}/{kind}/{item}"
        assert (await client.get(moved.headers["location"])).status_code == 200
    assert (await client.get("/nobody/nothing/-/jobs/1")).status_code == 404
    assert (await client.get(f"/{path}/-/settings/1")).status_code == 404
    await client.aclose()
    await runner.finish()
    await runner.http.aclose()


async def test_log_reads_ranges_lines_and_search(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    project, runner = await claim_job(live_server.url, tmp_path)
    job_id = runner.job["id"]
    lines = [b"\x1b[32mline %05d\x1b[0m %s\n" % (n, b"NEEDLE" if n in (3, 4321) else b"hay") for n in range(1, 6001)]
    for at in range(0, len(lines), 1000):
        assert (await runner.patch(b"".join(lines[at : at + 1000]))).status_code == 202
    await runner.patch(b"unfinished")
    log = b"".join(lines) + b"unfinished"
    client = await signed_in(live_server.url)
    base = f"/-/projects/{project['id']}/jobs/{job_id}/log"

    tail = await client.get(f"{base}/tail?size=1000")
    start, first = int(tail.headers["x-conveyor-start"]), int(tail.headers["x-conveyor-line"])
    assert tail.content == log[start:] and tail.content.endswith(b"unfinished")
    assert log[:start].count(b"\n") == first - 1 and int(tail.headers["x-conveyor-lines"]) == 6001
    middle = await client.get(f"{base}/range?start=100000&end=120000")
    body = middle.content
    assert body.startswith(b"\x1b[32mline ") and body.endswith(b"\n")
    assert body.split(b"\n")[0][5:15] == b"line %05d" % int(middle.headers["x-conveyor-line"])
    around = await client.get(f"{base}/line?n=4321")
    offset = int(around.headers["x-conveyor-start"])
    assert b"line 04321\x1b[0m NEEDLE" in around.content and log[offset:].startswith(around.content)
    found = (await client.get(f"{base}/search?q=needle")).json()
    assert found["total"] == 2 and [h["line"] for h in found["hits"]] == [3, 4321]
    assert found["hits"][0]["preview"] == "line 00003 NEEDLE"
    assert (await client.get(f"{base}/search?q=")).status_code == 400
    raw = await client.get(f"{base}/raw")
    assert raw.content == log and raw.headers["content-security-policy"].startswith("sandbox")
    assert raw.headers["content-disposition"] == "inline"
    download = await client.get(f"{base}/raw?download=1")
    assert download.headers["content-disposition"] == f'attachment; filename="job-{job_id}.log"'
    other = await client.get(f"/-/projects/{project['id']}/jobs/{job_id + 1000}/log/tail")
    assert other.status_code == 404
    await client.aclose()
    await runner.finish()
    await runner.http.aclose()


async def person(admin: httpx.AsyncClient, username: str, *scopes: str) -> tuple[dict, dict]:
    """A user made through the REST API, and a personal access token of ``scopes`` for it."""
    user = (await admin.post("/api/v4/users", json={"email": f"{username}@x.org", "username": username, "name": username.title()})).json()
    made = await admin.post(f"/api/v4/users/{user['id']}/personal_access_tokens", json={"name": "web", "scopes": list(scopes or ["api"])})
    assert made.status_code == 201, made.text
    return user, made.json()


async def sign_in(url: str, token: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=url, timeout=30, headers={"Accept": "text/html", "Origin": url})
    response = await client.post("/-/login", data={"token": token})
    assert response.status_code == 303, response.text
    return client


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def test_each_role_sees_and_does_what_gitlab_allows(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    project, runner = await claim_job(live_server.url, tmp_path)
    job_id, pid = runner.job["id"], project["id"]
    await runner.patch(b"hello from the job\n")
    await runner.finish("failed")
    url, job_page, listed = live_server.url, f"/-/projects/{pid}/jobs/{job_id}", f'href="/-/projects/{pid}/pipelines"'
    retry_action = f'action="/-/projects/{pid}/jobs/{job_id}/retry"'
    admin = httpx.AsyncClient(base_url=url, headers={"PRIVATE-TOKEN": ROOT_TOKEN}, timeout=30)
    pipeline_id = (await admin.get(f"/api/v4/projects/{pid}/jobs/{job_id}")).json()["pipeline"]["id"]
    people = {}
    for name, level, scopes in (("rita", 20, ["api"]), ("dave", 30, ["api"]), ("reed", 30, ["read_api"]), ("nora", None, ["api"])):
        people[name] = await person(admin, name, *scopes)
        if level:
            added = await admin.post(f"/api/v4/projects/{pid}/members", json={"user_id": people[name][0]["id"], "access_level": level})
            assert added.status_code == 201, added.text
    async with httpx.AsyncClient(base_url=url) as anonymous:
        refused = await anonymous.post("/-/login", data={"token": (await person(admin, "ursula", "read_user"))[1]["token"]})
    assert refused.status_code == 401 and "api or read_api scope" in refused.text

    async def attempts() -> int:
        jobs = await admin.get(f"/api/v4/projects/{pid}/pipelines/{pipeline_id}/jobs?include_retried=true")
        return len(jobs.json())

    # a reporter: listed, reads the job and its log, no action buttons, and a refused retry shown in the page
    rita = await sign_in(url, people["rita"][1]["token"])
    home = await rita.get("/-/")
    assert listed in home.text and "Signed in as <strong>rita</strong>" in home.text and 'href="/-/runners"' not in home.text
    page = await rita.get(job_page)
    assert page.status_code == 200 and retry_action not in page.text and "Run pipeline" not in (await rita.get(f"/-/projects/{pid}/pipelines")).text
    assert (await rita.get(f"{job_page}/log/tail")).content == b"hello from the job\n"
    posted = await rita.post(f"{job_page}/retry", data={"csrf_token": csrf(page.text)}, follow_redirects=True)
    assert posted.status_code == 200 and posted.headers["content-type"].startswith("text/html")
    assert "you need the Developer role" in posted.text and await attempts() == 1
    runners = await rita.get("/-/runners")
    assert runners.status_code == 403 and runners.headers["content-type"].startswith("text/html")

    # a read_api developer reads but cannot act
    reed = await sign_in(url, people["reed"][1]["token"])
    page = await reed.get(job_page)
    assert page.status_code == 200 and retry_action not in page.text
    posted = await reed.post(f"{job_page}/retry", data={"csrf_token": csrf(page.text)}, follow_redirects=True)
    assert "read_api scope" in posted.text and await attempts() == 1
    async with live_server.services.engine.begin() as conn:  # the token expires today
        await conn.execute(sa.text("UPDATE tokens SET expires_at = CURRENT_DATE WHERE id = :id"), {"id": people["reed"][1]["id"]})
    live_server.services.admin_tokens.forget(token_id=people["reed"][1]["id"])  # as another process, after the cache's ttl
    ended = await reed.get(job_page)
    assert ended.status_code == 303 and ended.headers["location"].endswith("&ended=expired")
    assert "token has expired" in (await reed.get(ended.headers["location"])).text
    async with httpx.AsyncClient(base_url=url) as anonymous:
        expired = await anonymous.post("/-/login", data={"token": people["reed"][1]["token"]})
    assert expired.status_code == 401 and "Sign-in refused: the personal access token has expired" in expired.text

    # a non-member: not listed, every page of the project is 404 (GitLab hides it), and cannot act
    nora = await sign_in(url, people["nora"][1]["token"])
    assert listed not in (await nora.get("/-/")).text
    pipeline = f"/-/projects/{pid}/pipelines/{pipeline_id}"
    for path in (f"/-/projects/{pid}/pipelines", pipeline, f"{pipeline}/status.json", f"{pipeline}/tests", job_page,
                 f"{job_page}/status.json", f"{job_page}/log/tail", f"{job_page}/log/raw", f"{job_page}/log/stream",
                 f"{job_page}/artifacts/archive"):
        assert (await nora.get(path)).status_code == 404, path
    home = await nora.get("/-/")
    posted = await nora.post(f"{job_page}/retry", data={"csrf_token": csrf(home.text)}, follow_redirects=True)
    assert posted.status_code == 404 and await attempts() == 1

    # a developer: the buttons, a retry, and a pipeline run from the form that records who ran it
    dave = await sign_in(url, people["dave"][1]["token"])
    page = await dave.get(job_page)
    assert retry_action in page.text
    retried = await dave.post(f"{job_page}/retry", data={"csrf_token": csrf(page.text)})
    assert retried.status_code == 303 and retried.headers["location"] != job_page and await attempts() == 2
    run = await dave.post(f"/-/projects/{pid}/pipelines", data={"csrf_token": csrf(page.text), "ref": "main"})
    assert run.status_code == 303 and "/pipelines/" in run.headers["location"]
    row = re.search(r"<tr>(?:(?!</tr>).)*" + re.escape(run.headers["location"]) + r"(?:(?!</tr>).)*</tr>",
                    (await dave.get(f"/-/projects/{pid}/pipelines")).text, re.S)
    assert row and "Dave" in row.group(0) and ">web<" in row.group(0).replace(" ", "")

    # a blocked user's session ends at the next request; so does a revoked token's
    assert (await admin.post(f"/api/v4/users/{people['dave'][0]['id']}/block")).status_code == 201
    ended = await dave.get("/-/")
    assert ended.status_code == 303 and ended.headers["location"] == "/-/login?next=/-/&ended=refused"
    assert "the account is blocked" in (await dave.get(ended.headers["location"])).text
    await admin.post(f"/api/v4/users/{people['dave'][0]['id']}/unblock")
    assert (await dave.get("/-/")).status_code == 303  # the session stays closed
    await admin.delete(f"/api/v4/personal_access_tokens/{people['rita'][1]['id']}")
    ended = await rita.get(job_page)
    assert ended.status_code == 303 and ended.headers["location"].endswith("&ended=revoked")
    assert "token was revoked" in (await rita.get(ended.headers["location"])).text

    # an administrator sees every project, the runners and the buttons
    root = await sign_in(url, ROOT_TOKEN)
    assert listed in (await root.get("/-/")).text and (await root.get("/-/runners")).status_code == 200
    assert 'href="/-/runners"' in (await root.get(job_page)).text
    for client in (admin, rita, reed, nora, dave, root):
        await client.aclose()
    await runner.http.aclose()
