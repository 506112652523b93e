"""A streaming replica of the session's PostgreSQL, started once per test session when a test asks.

``replica`` is a hot standby (``pg_basebackup -R`` from pgserver's PostgreSQL 16); every test
database cloned on the primary (``database_url``) appears on it once replayed: ``replica_url``
waits for that. Tests that pause replay or stop the replica must undo it (``replay_resumed``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.plugins import services


@pytest.fixture(scope="session")
def replica(postgres: services.Postgres) -> Iterator[services.Postgres]:  # noqa: F811
    standby = services.start_replica(postgres)
    yield standby
    standby.stop()


@pytest.fixture
def replica_url(replica: services.Postgres, database_url: str) -> Iterator[str]:
    """The test database on the replica, once the replica has it; replay running again afterwards."""
    name = database_url.rsplit("/", 1)[1]
    deadline = time.monotonic() + 30
    while replica.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{name}'").strip() != "1":
        if time.monotonic() > deadline:
            raise TimeoutError(f"the replica never saw database {name}")
        time.sleep(0.05)
    yield replica.url(name)
    if replica.proc.poll() is not None:
        replica.resume()
    replica.psql("SELECT pg_wal_replay_resume()")


def wait_replayed(primary: services.Postgres, replica: services.Postgres, timeout: float = 30) -> None:
    """Until the replica has replayed everything the primary wrote so far."""
    target = primary.psql("SELECT pg_current_wal_insert_lsn()").strip()
    deadline = time.monotonic() + timeout
    while replica.psql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn").strip() != "t":
        if time.monotonic() > deadline:
            raise TimeoutError("the replica did not catch up")
        time.sleep(0.02)
