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
