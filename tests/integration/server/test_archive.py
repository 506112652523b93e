"""Archiving a finished job's log, on the filesystem and on S3: a failed or corrupt archive
deletes nothing and is retried with a backoff; the healed store then holds the log byte for byte."""

from __future__ import annotations

import asyncio
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from conveyor.server import keys
from conveyor.server.archive.digest import stored_digest
from conveyor.server.db import queries
from tests.integration.server.archive_support import FaultyStore, job_state, run_job, stored_bytes, wait_for

pytestmark = pytest.mark.integration

LOG = b"".join(b"%06d line of log output, some of it long enough to matter\n" % i for i in range(5000))  # ~300 KiB


@pytest.fixture
def server_settings(server_settings, object_store: dict[str, Any]):  # noqa: ANN001, ANN201
    return server_settings.with_overrides(archive_retry_base_delay=1, archive_retry_max_delay=2, **object_store)


def key(job_id: int) -> str:
    return f"traces/{job_id}/job.log"


async def metric(live, name: str, reason: str) -> float:  # noqa: ANN001
    async with httpx.AsyncClient(base_url=live.url) as c:
        text = (await c.get("/metrics")).text
    line = next(l for l in text.splitlines() if l.startswith(f'{name}{{reason="{reason}"}}'))
    return float(line.split()[-1])


@pytest.mark.parametrize("fault", ["fail", "corrupt"])
async def test_failed_archive_keeps_chunks_then_heals_byte_identical(live_server, tmp_path: Path, fault: str) -> None:  # noqa: ANN001
    services = live_server.services
    archiver = services.archiver  # the server's own, whose background sweep also runs
    real = archiver.objects
    faulty = FaultyStore(real, fault)

    async def inject(job_id: int) -> None:
        archiver.objects = faulty

    job = await run_job(live_server, tmp_path, LOG, before_finish=inject)
    await wait_for(lambda: _attempts_at_least(services.engine, job.id, 1))
    assert archiver.failures >= 1
    reason = "error" if fault == "fail" else "mismatch"
    assert await metric(live_server, "conveyor_trace_archive_failures_total", reason) >= 1
    archived, chunks = await job_state(services.engine, job.id)
    assert not archived and chunks == 3  # nothing deleted: three 128 KiB chunks
    assert (await job.admin.get(f"/api/v4/projects/{job.project_id}/jobs/{job.id}/trace")).content == LOG
    if fault == "corrupt":  # a corrupt object was left behind: the next attempt must overwrite it
        assert (await stored_digest(real, key(job.id))).size == len(LOG)
        assert await stored_bytes(real, key(job.id)) != LOG

    faulty.mode = None  # healed: the next sweep after the backoff archives it
    await wait_for(lambda: _done(services.engine, job.id))
    stored = await stored_bytes(real, key(job.id))
    assert stored == LOG and zlib.crc32(stored) == zlib.crc32(LOG)
    assert (await job.admin.get(f"/api/v4/projects/{job.project_id}/jobs/{job.id}/trace")).content == LOG
    async with services.engine.connect() as conn:
        assert await queries.archives.get(conn, job.id) is None  # the attempts are forgotten
    await job.admin.aclose()


async def _attempts_at_least(engine, job_id: int, attempts: int) -> bool:  # noqa: ANN001
    async with engine.connect() as conn:
        row = await queries.archives.get(conn, job_id)
    return row is not None and row["attempts"] >= attempts


async def _done(engine, job_id: int) -> bool:  # noqa: ANN001
    return await job_state(engine, job_id) == (True, 0)


async def test_a_verified_existing_object_finishes_without_writing(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    """GitLab's AlreadyArchived case: an earlier attempt wrote the object, then died before marking."""
    archiver = live_server.services.archiver
    faulty = FaultyStore(archiver.objects)  # counts puts, fails none

    async def written_by_an_earlier_attempt(job_id: int) -> None:
        async def whole():  # noqa: ANN202
            yield LOG

        await faulty.real.put(key(job_id), whole())
        archiver.objects = faulty

    job = await run_job(live_server, tmp_path, LOG, before_finish=written_by_an_earlier_attempt)
    await wait_for(lambda: _done(live_server.services.engine, job.id))
    assert faulty.puts == 0 and await stored_bytes(faulty.real, key(job.id)) == LOG
    await job.admin.aclose()


async def test_runner_checksum_mismatch_holds_the_job_and_keeps_chunks(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    services = live_server.services
    wrong = f"crc32:{zlib.crc32(LOG) ^ 1:08x}"
    job = await run_job(live_server, tmp_path, LOG, checksum=wrong)

    async def held() -> bool:
        async with services.engine.connect() as conn:
            row = await queries.archives.get(conn, job.id)
        return row is not None and row["checksum_mismatch"]

    await wait_for(held)
    assert await metric(live_server, "conveyor_trace_archive_failures_total", "checksum") == 1
    for _ in range(3):  # held: later sweeps leave it alone instead of looping on it
        await services.archiver.archive_pending()
        await asyncio.sleep(0.2)
    assert await metric(live_server, "conveyor_trace_archive_failures_total", "checksum") == 1
    assert await job_state(services.engine, job.id) == (False, 3)
    assert (await job.admin.get(f"/api/v4/projects/{job.project_id}/jobs/{job.id}/trace")).content == LOG
    async with services.engine.connect() as conn:
        assert job.id not in await queries.archives.due(conn)
        row = await queries.archives.get(conn, job.id)
    assert wrong in row["last_error"]
    await job.admin.aclose()


async def test_backoff_doubles_up_to_the_cap(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    engine = live_server.services.engine
    job = await run_job(live_server, tmp_path, b"short log\n")
    await wait_for(lambda: _done(engine, job.id))
    waits = []
    async with engine.begin() as conn:  # now() is fixed within a transaction: the waits are exact
        for _ in range(4):
            await queries.archives.record_failure(conn, job.id, "boom", base_delay=10, max_delay=25, jitter=1.0)
            row = await queries.archives.get(conn, job.id)
            seconds = (await conn.execute(sa.text("SELECT extract(epoch FROM :at - now())"), {"at": row["next_attempt_at"]})).scalar()
            waits.append((row["attempts"], round(float(seconds))))
        assert await queries.archives.due(conn) == []  # archived: never due again
    assert waits == [(1, 10), (2, 20), (3, 25), (4, 25)]
    await job.admin.aclose()


async def test_a_finished_job_is_archived_at_once_deleting_its_rows_once(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    # issue 24: the final update hands the job to the archiver (no search for due jobs first),
    # and the archiver's last statement deletes the durable chunk rows: the live store's
    # cleanup after it no longer deletes them a second time in a transaction of its own
    services = live_server.services
    seen: list[str] = []

    async def record(_job_id: int) -> None:
        services.observer.add_listener(lambda statement, _params: seen.append(statement))

    job = await run_job(live_server, tmp_path, LOG, before_finish=record)
    await wait_for(lambda: _done(services.engine, job.id), seconds=10)
    # (one statement since: the job flagged, its chunk rows and attempts deleted)
    assert len([s for s in seen if "DELETE FROM trace_chunks" in s]) == 1, seen
    stored = await stored_bytes(services.archiver.objects, key(job.id))
    assert stored == LOG
    await job.admin.aclose()


async def test_a_log_archived_meanwhile_is_not_archived_again_from_the_finish_s_facts(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    # issue 24: the finish hands the archiver the log's size, CRC-32 and the runner's checksum so
    # it need not read the job; when another process archived the log first (here: the server's
    # own archiver), those facts are stale: the live log is gone, so the job's row is read again
    # and nothing is written, restored or deleted. Trusting them would restore an empty log into
    # Redis and record a size of 0 on the archived job.
    services = live_server.services
    job = await run_job(live_server, tmp_path, b"short log\n")
    await wait_for(lambda: _done(services.engine, job.id))
    async with services.engine.connect() as conn:
        before = dict((await conn.execute(sa.text("SELECT trace_size, trace_crc32, trace_checksum FROM jobs WHERE id = :id"),
                                          {"id": job.id})).mappings().one())
    facts = (before["trace_size"], before["trace_crc32"], before["trace_checksum"])
    crc = zlib.crc32(b"short log\n")
    assert facts == (10, crc, f"crc32:{crc:08x}")
    assert await services.archiver.archive(job.id, facts) is False
    async with services.engine.connect() as conn:
        after = dict((await conn.execute(sa.text("SELECT trace_size, trace_crc32, trace_checksum FROM jobs WHERE id = :id"),
                                         {"id": job.id})).mappings().one())
    assert after == before
    assert not await services.redis.exists(keys.trace_meta(job.id))  # no empty log restored
    assert await stored_bytes(services.archiver.objects, key(job.id)) == b"short log\n"
    await job.admin.aclose()
