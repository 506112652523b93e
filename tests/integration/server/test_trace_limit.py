"""A log over the per-job limit keeps its head, ends with a visible marker, and fails the job."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.integration.server.test_runner_api import _request, _setup

pytestmark = pytest.mark.integration

LIMIT = 1000


@pytest.fixture
def server_settings(server_settings):  # noqa: ANN001, ANN201
    return server_settings.with_overrides(trace_size_limit=LIMIT)


async def test_oversized_log_is_truncated_with_a_marker(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, token, project = await _setup(live_server, tmp_path)
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    job = (await _request(live_server, token)).json()
    head, overflow = b"a" * 600, b"b" * 600
    async with httpx.AsyncClient(base_url=live_server.url) as c:
        url = f"/api/v4/jobs/{job['id']}/trace"
        jt = {"JOB-TOKEN": job["token"]}
        assert (await c.patch(url, content=head, headers={**jt, "Content-Range": "0-599"})).status_code == 202
        over = await c.patch(url, content=overflow, headers={**jt, "Content-Range": "600-1199"})
        assert over.status_code == 403 and over.headers["Job-Status"] == "failed"
    log = (await admin.get(f"/api/v4/projects/{project['id']}/jobs/{job['id']}/trace")).content
    assert log.startswith(head + b"b" * 400)  # everything up to the limit is kept
    assert log[LIMIT:].decode().count(f"Job's log exceeded limit of {LIMIT} bytes") == 1
    info = (await admin.get(f"/api/v4/projects/{project['id']}/jobs/{job['id']}")).json()
    assert info["status"] == "failed" and info["failure_reason"] == "trace_size_exceeded"
    await admin.aclose()
