"""A failed archive deletes nothing and is retried; a healed store then takes the whole log."""

from __future__ import annotations

import asyncio

import zlib
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.integration.server.test_runner_api import _request, _setup

pytestmark = pytest.mark.integration


@pytest.fixture
def broken_root(tmp_path: Path) -> Path:
    root = tmp_path / "broken-store"
    root.mkdir()
    (root / "traces").write_text("a file where the archive needs a directory")
    return root


@pytest.fixture
def server_settings(server_settings, broken_root: Path):  # noqa: ANN001, ANN201
    return server_settings.with_overrides(object_store_url=broken_root.as_uri())


async def test_archive_failure_keeps_chunks_and_heals(live_server, broken_root: Path, tmp_path: Path) -> None:  # noqa: ANN001
    admin, token, project = await _setup(live_server, tmp_path)
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    job = (await _request(live_server, token)).json()
    data = b"line of log\n" * 20_000  # 240 KiB, two chunks
    async with httpx.AsyncClient(base_url=live_server.url) as c:
        r = await c.patch(f"/api/v4/jobs/{job['id']}/trace", content=data,
                          headers={"JOB-TOKEN": job["token"], "Content-Range": f"0-{len(data) - 1}"})
        assert r.status_code == 202
        checksum = f"crc32:{zlib.crc32(data):08x}"
        final = {"token": job["token"], "state": "success", "output": {"checksum": checksum, "bytesize": len(data)}}
        assert (await c.put(f"/api/v4/jobs/{job['id']}", json=final)).status_code == 200

    services = live_server.services
    archiver = services.archiver  # the server's own, whose store cannot take the archive
    for _ in range(100):  # ours or the background sweep's attempt, whichever holds the lease
        assert await archiver.archive_pending() == 0
        if archiver.failures:
            break
        await asyncio.sleep(0.1)
    assert archiver.failures >= 1

    async def state() -> tuple[bool, int]:
        async with services.engine.connect() as conn:
            archived = (await conn.execute(sa.text("SELECT trace_archived FROM jobs WHERE id = :id"), {"id": job["id"]})).scalar()
            chunks = (await conn.execute(sa.text("SELECT count(*) FROM trace_chunks WHERE job_id = :id"), {"id": job["id"]})).scalar()
        return archived, chunks

    assert await state() == (False, 2)  # nothing deleted
    log = await admin.get(f"/api/v4/projects/{project['id']}/jobs/{job['id']}/trace")
    assert log.content == data  # still readable from the live chunks

    (broken_root / "traces").unlink()  # heal the store; the next sweep retries
    for _ in range(100):  # ours or the background sweep's retry, whichever comes first
        await archiver.archive_pending()
        if await state() == (True, 0):
            break
        await asyncio.sleep(0.1)
    assert await state() == (True, 0)
    stored = b"".join([piece async for piece in archiver.objects.open_read(f"traces/{job['id']}/job.log")])
    assert stored == data
    await admin.aclose()
