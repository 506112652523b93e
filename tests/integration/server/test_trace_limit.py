"""A log over the per-job limit keeps its head and its last part, with a visible marker between
them; the job is not cut short (GitLab would drop it with trace_size_exceeded and lose the end)."""

from __future__ import annotations

import zlib
from pathlib import Path

import httpx
import pytest

from tests.integration.server.test_runner_api import _request, _setup

pytestmark = pytest.mark.integration

LIMIT, TAIL = 1000, 200


@pytest.fixture
def server_settings(server_settings):  # noqa: ANN001, ANN201
    return server_settings.with_overrides(trace_size_limit=LIMIT, trace_tail_size=TAIL)


async def _patch(c: httpx.AsyncClient, job: dict, data: bytes, start: int) -> httpx.Response:
    return await c.patch(f"/api/v4/jobs/{job['id']}/trace", content=data,
                         headers={"JOB-TOKEN": job["token"], "Content-Range": f"{start}-{start + len(data) - 1}"})


async def _final(c: httpx.AsyncClient, job: dict, printed: bytes) -> httpx.Response:
    body = {"token": job["token"], "state": "success", "checksum": f"crc32:{zlib.crc32(printed):08x}",
            "output": {"bytesize": len(printed)}}
    return await c.put(f"/api/v4/jobs/{job['id']}", json=body)


async def test_an_oversized_log_keeps_its_head_and_its_last_part_with_a_marker(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, token, project = await _setup(live_server, tmp_path)
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    job = (await _request(live_server, token)).json()
    printed = b"".join(f"line {i:05d}\n".encode() for i in range(400))  # 4,400 bytes
    async with httpx.AsyncClient(base_url=live_server.url) as c:
        offset = 0
        for size in (600, 700, 1, 1500, 1599):  # the runner's offsets keep growing past the limit
            response = await _patch(c, job, printed[offset : offset + size], offset)
            assert response.status_code == 202, response.text
            offset += size
            assert response.headers["Range"] == f"0-{offset}"
        stale = await _patch(c, job, b"again", 100)  # a resend is refused with the runner's offset
        assert stale.status_code == 416 and stale.headers["Range"] == f"0-{len(printed)}"
        assert (await _final(c, job, printed)).status_code == 200
    log = (await admin.get(f"/api/v4/projects/{project['id']}/jobs/{job['id']}/trace")).content
    head = LIMIT - TAIL
    assert log.startswith(printed[:head])
    assert log.endswith(printed[-TAIL:])  # the end of the log, where the error usually is
    middle = log[head:-TAIL].decode()
    assert f"exceeded limit of {LIMIT} bytes: {len(printed) - LIMIT} bytes were left out here" in middle
    info = (await admin.get(f"/api/v4/projects/{project['id']}/jobs/{job['id']}")).json()
    assert info["status"] == "success" and info["failure_reason"] is None  # not cut short
    assert info["trace_checksum"] == f"crc32:{zlib.crc32(log):08x}"  # the checksum of the log kept
    await admin.aclose()


async def test_the_final_update_waits_for_the_tail_before_sealing(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, token, project = await _setup(live_server, tmp_path)
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    job = (await _request(live_server, token)).json()
    printed = bytes(range(256)) * 10
    async with httpx.AsyncClient(base_url=live_server.url) as c:
        assert (await _patch(c, job, printed[:2000], 0)).status_code == 202
        early = await _final(c, job, printed)  # 560 bytes still to come
        assert early.status_code == 202
        assert (await _patch(c, job, printed[2000:], 2000)).status_code == 202
        assert (await _final(c, job, printed)).status_code == 200
    log = (await admin.get(f"/api/v4/projects/{project['id']}/jobs/{job['id']}/trace")).content
    assert log.startswith(printed[: LIMIT - TAIL]) and log.endswith(printed[-TAIL:])
    await admin.aclose()


async def test_a_log_within_the_limit_is_untouched(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, token, project = await _setup(live_server, tmp_path)
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    job = (await _request(live_server, token)).json()
    printed = b"x" * (LIMIT - TAIL)  # exactly the head
    async with httpx.AsyncClient(base_url=live_server.url) as c:
        assert (await _patch(c, job, printed, 0)).status_code == 202
        assert (await _final(c, job, printed)).status_code == 200
    log = (await admin.get(f"/api/v4/projects/{project['id']}/jobs/{job['id']}/trace")).content
    assert log == printed
    await admin.aclose()
