"""Helpers for the archive tests: a store that fails on demand, a finished job with a known log."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa

from conveyor.server.storage import ObjectStore
from tests.integration.server.test_runner_api import _request, _setup


class FaultyStore(ObjectStore):
    """A real store underneath; ``put`` fails midway (``"fail"``) or stores one byte flipped
    (``"corrupt"``) while ``mode`` says so. Reads, sizes and deletes go straight through."""

    def __init__(self, real: ObjectStore, mode: str | None = None) -> None:
        self.real = real
        self.mode = mode
        self.puts = 0

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        self.puts += 1
        return await self.real.put(key, self._filter(chunks))

    async def _filter(self, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        first = True
        async for chunk in chunks:
            if self.mode == "fail":  # half of the first piece goes out, then the connection drops
                yield chunk[: len(chunk) // 2]
                raise ConnectionError("injected: object store unreachable mid-upload")
            if self.mode == "corrupt" and first and chunk:
                chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
            first = False
            yield chunk

    def open_read(self, key: str, start: int = 0) -> AsyncIterator[bytes]:
        return self.real.open_read(key, start)

    async def size(self, key: str) -> int | None:
        return await self.real.size(key)

    async def delete(self, key: str) -> None:
        await self.real.delete(key)

    async def put_bytes(self, key: str, data: bytes) -> None:
        await self.real.put_bytes(key, data)

    async def get_bytes(self, key: str) -> bytes | None:
        return await self.real.get_bytes(key)

    async def delete_prefix(self, prefix: str) -> int:
        return await self.real.delete_prefix(prefix)


@dataclass
class FinishedJob:
    id: int
    project_id: int
    admin: httpx.AsyncClient
    data: bytes


async def run_job(live, tmp_path: Path, data: bytes, checksum: str | None = None,  # noqa: ANN001
                  before_finish: Callable[[int], Awaitable[None]] | None = None) -> FinishedJob:
    """A job that printed ``data`` (PATCHed in one piece) and finished with the runner's checksum
    (``before_finish(job_id)`` runs between the two)."""
    admin, token, project = await _setup(live, tmp_path)
    await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    job = (await _request(live, token)).json()
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as c:
        r = await c.patch(f"/api/v4/jobs/{job['id']}/trace", content=data,
                          headers={"JOB-TOKEN": job["token"], "Content-Range": f"0-{len(data) - 1}"})
        assert r.status_code == 202
        if before_finish is not None:
            await before_finish(job["id"])
        checksum = checksum or f"crc32:{zlib.crc32(data):08x}"
        final = {"token": job["token"], "state": "success", "output": {"checksum": checksum, "bytesize": len(data)}}
        assert (await c.put(f"/api/v4/jobs/{job['id']}", json=final)).status_code == 200
    return FinishedJob(job["id"], project["id"], admin, data)


async def job_state(engine, job_id: int) -> tuple[bool, int]:  # noqa: ANN001
    """(trace_archived, number of durable chunk rows)."""
    async with engine.connect() as conn:
        archived = (await conn.execute(sa.text("SELECT trace_archived FROM jobs WHERE id = :id"), {"id": job_id})).scalar()
        chunks = (await conn.execute(sa.text("SELECT count(*) FROM trace_chunks WHERE job_id = :id"), {"id": job_id})).scalar()
    return archived, chunks


async def wait_for(predicate: Callable[[], Awaitable[bool]], seconds: float = 30) -> None:
    for _ in range(int(seconds * 10)):
        if await predicate():
            return
        await asyncio.sleep(0.1)
    assert await predicate(), "condition not reached in time"


async def stored_bytes(store: ObjectStore, key: str) -> bytes:
    return b"".join([piece async for piece in store.open_read(key)])
