"""Read replicas: read-your-writes, a lagging replica skipped, a stopped one skipped and back, and
the queue claiming on the primary only; against a real streaming replica (``tests/plugins/replicas.py``)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.integration.server.test_runner_api import _request, _setup
from tests.plugins.replicas import wait_replayed

pytestmark = pytest.mark.integration


async def _names(conn) -> list[str]:  # noqa: ANN001
    return list((await conn.execute(sa.text("SELECT name FROM projects ORDER BY id"))).scalars())


async def _add_project(engine, name: str) -> None:  # noqa: ANN001
    async with engine.begin() as conn:
        await conn.execute(sa.text("INSERT INTO projects (name, source) VALUES (:n, :n)"), {"n": name})


def _reads(primary_url: str, replica_url: str, **options):  # noqa: ANN003, ANN202
    from conveyor.server.db import StatementObserver, create_engine
    from conveyor.server.db.replicas import Reads, Replica

    observer = StatementObserver("raise")
    primary = create_engine(primary_url, observer, pool_size=2)
    replica = Replica(replica_url, create_engine(replica_url, observer, pool_size=2, ping_after_idle=0.2))
    return Reads(primary, [replica], **options), replica


async def test_a_read_after_a_write_in_the_same_request_sees_the_write(postgres, replica, database_url, replica_url) -> None:  # noqa: ANN001
    from conveyor.server.db.replicas import write_session

    reads, standby = _reads(database_url, replica_url, check_interval=0)
    try:
        replica.psql("SELECT pg_wal_replay_pause()")
        with write_session():  # one request: a write, then a listing
            await _add_project(reads.primary, "written-in-this-request")
            assert "written-in-this-request" in await reads.run(_names)
        assert (standby.reads, reads.primary_reads) == (0, 1)  # the replica has not replayed it: primary
        with write_session():  # another request, which wrote nothing: the replica, stale as it is
            assert "written-in-this-request" not in await reads.run(_names)
        assert standby.reads == 1
        replica.psql("SELECT pg_wal_replay_resume()")
        wait_replayed(postgres, replica)
        with write_session():
            await _add_project(reads.primary, "second")
            await asyncio.sleep(0.5)
            wait_replayed(postgres, replica)
            assert (await reads.run(_names))[-1] == "second"  # caught up: the replica serves it
        assert (standby.reads, reads.primary_reads) == (2, 1)
    finally:
        await reads.dispose()
        await reads.primary.dispose()


async def test_a_lagging_replica_is_skipped_and_used_again_once_caught_up(postgres, replica, database_url, replica_url) -> None:  # noqa: ANN001
    reads, standby = _reads(database_url, replica_url, max_lag=0.5, retry_interval=1.0, check_interval=0)
    try:
        await reads.run(_names)
        assert standby.reads == 1
        replica.psql("SELECT pg_wal_replay_pause()")
        await _add_project(reads.primary, "while-paused")  # written outside any session
        await asyncio.sleep(1.2)  # the replica's lag (receive > replay) now exceeds 0.5 s
        assert "while-paused" in await reads.run(_names)  # skipped: the primary answered
        assert (standby.reads, standby.skips, reads.primary_reads) == (1, 1, 1)
        assert "while-paused" in await reads.run(_names)  # left alone for retry_interval
        assert (standby.skips, reads.primary_reads) == (1, 2)
        replica.psql("SELECT pg_wal_replay_resume()")
        wait_replayed(postgres, replica)
        await asyncio.sleep(1.0)  # retry_interval
        assert "while-paused" in await reads.run(_names)
        assert standby.reads == 2  # back on the replica
    finally:
        await reads.dispose()
        await reads.primary.dispose()


async def test_a_stopped_replica_is_skipped_and_comes_back(postgres, replica, database_url, replica_url) -> None:  # noqa: ANN001
    reads, standby = _reads(database_url, replica_url, retry_interval=0.5, check_interval=0)
    try:
        await reads.run(_names)
        assert standby.reads == 1
        replica.halt()
        await _add_project(reads.primary, "while-stopped")
        assert "while-stopped" in await reads.run(_names)  # the dead connection fails: skipped, primary
        assert (standby.skips, reads.primary_reads) == (1, 1)
        replica.resume()
        wait_replayed(postgres, replica)
        deadline = time.monotonic() + 15
        while standby.reads < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.5)  # retry_interval
            assert "while-stopped" in await reads.run(_names)
        assert standby.reads == 2  # back
    finally:
        await reads.dispose()
        await reads.primary.dispose()


@pytest.fixture
def server_settings(server_settings, replica_url):  # noqa: ANN001, ANN201
    return server_settings.with_overrides(database_replica_urls=replica_url, db_replica_check_interval=0)


async def test_server_listings_follow_the_clients_writes_and_claims_use_the_primary(live_server, postgres, replica, tmp_path: Path) -> None:  # noqa: ANN001
    reads = live_server.services.reads
    [standby] = reads.replicas
    admin, token, project = await _setup(live_server, tmp_path)
    replica.psql("SELECT pg_wal_replay_pause()")  # from here on the replica sees none of what follows
    try:
        created = (await admin.post(f"/api/v4/projects/{project['id']}/pipeline")).json()
        listed = (await admin.get(f"/api/v4/projects/{project['id']}/pipelines")).json()
        assert [p["id"] for p in listed] == [created["id"]]  # this token wrote: the primary answered
        jobs = (await admin.get(f"/api/v4/projects/{project['id']}/pipelines/{created['id']}/jobs")).json()
        assert jobs and reads.primary_reads >= 2
        claimed = await _request(live_server, token)  # the queue claims on the primary only
        assert claimed.status_code == 201 and claimed.json()["job_info"]["name"] == "build"
    finally:
        replica.psql("SELECT pg_wal_replay_resume()")
        await admin.aclose()
    wait_replayed(postgres, replica)
    before = standby.reads
    async with live_server.admin() as again:  # the replica has replayed this token's writes: it serves
        listed = (await again.get(f"/api/v4/projects/{project['id']}/pipelines")).json()
    assert [p["id"] for p in listed] == [created["id"]] and standby.reads == before + 1
