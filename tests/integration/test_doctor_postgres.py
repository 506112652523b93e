"""``conveyor doctor postgres`` against a real primary and streaming replica: quiet, then with the
danger manufactured (70 written subtransactions held in a long transaction, an EXCEPTION trigger,
replay paused), run as the real CLI process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import asyncpg
import pytest

from conveyor.server.db import doctor

pytestmark = pytest.mark.integration


def test_names_follow_the_server_version() -> None:
    assert doctor.wait_events(120000) == ("SubtransControlLock", "subtrans")
    assert doctor.wait_events(130000) == doctor.wait_events(170000) == ("SubtransSLRU", "SubtransBuffer")
    assert (doctor.slru_name(160000), doctor.slru_name(170000)) == ("Subtrans", "subtransaction")
    assert doctor.safe_url("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"


def _doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conveyor", "doctor", "postgres", *args],
                          capture_output=True, text=True, timeout=120)


def _findings(server: dict) -> dict[str, dict]:
    return {finding["check"]: finding for finding in server["findings"]}


def test_a_quiet_primary_and_replica_with_conveyors_schema_are_fine(database_url: str, replica_url: str) -> None:
    done = _doctor(database_url, replica_url, "--json", "--long-transaction", "3600", "--idle-in-transaction", "3600")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    primary, replica = report["servers"]
    assert (primary["role"], replica["role"]) == ("primary", "replica")
    assert primary["version"].startswith("16")
    checks = ["long_transactions", "idle_in_transaction", "subtrans_waits", "subtrans_slru", "subxact_backends",
              "replication", "subtransaction_buffers", "exception_blocks"]
    assert list(_findings(primary)) == list(_findings(replica)) == checks
    assert _findings(primary)["exception_blocks"]["summary"].startswith("0 PL/pgSQL")  # Conveyor's own schema
    assert _findings(replica)["subtrans_waits"]["details"][0] == {"wait_events": ["SubtransSLRU", "SubtransBuffer"]}
    assert _findings(replica)["subtrans_slru"]["details"][0]["name"] == "Subtrans"
    assert _findings(primary)["replication"]["details"] and "32 pages" in _findings(primary)["subtransaction_buffers"]["summary"]


async def test_the_manufactured_danger_is_reported(database_url: str, replica_url: str, replica) -> None:  # noqa: ANN001
    setup = await asyncpg.connect(database_url)
    holder = await asyncpg.connect(database_url)  # the test-only connection that misbehaves
    try:
        await setup.execute("""
            CREATE TABLE doctor_victim (i int);
            CREATE FUNCTION doctor_swallow() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RETURN NEW;
            EXCEPTION
                WHEN others THEN RETURN NEW;
            END $$;
            CREATE TRIGGER doctor_swallow BEFORE INSERT ON doctor_victim FOR EACH ROW EXECUTE FUNCTION doctor_swallow();
        """)
        await holder.execute("BEGIN")
        for i in range(70):  # 70 written subtransactions: the per-backend cache (64) overflows
            await holder.execute(f"SAVEPOINT s{i}")
            await holder.execute("INSERT INTO doctor_victim VALUES ($1)", i)
        replica.psql("SELECT pg_wal_replay_pause()")
        await asyncio.sleep(1.2)  # and the transaction is now "long" by the thresholds below
        done = _doctor(database_url, replica_url, "--json", "--long-transaction", "1", "--idle-in-transaction", "1")
        table = _doctor(database_url, replica_url, "--long-transaction", "1")
    finally:
        await holder.close()
        await setup.close()
    assert done.returncode == 2, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["level"] == "danger"
    primary, standby = (_findings(server) for server in report["servers"])
    pid = holder.get_server_pid()
    [backend] = [d for d in primary["subxact_backends"]["details"] if d["pid"] == pid]
    assert backend["subxact_count"] == 64 and backend["subxact_overflowed"] is True and backend["backend_id"] != pid
    assert primary["subxact_backends"]["level"] == "danger"
    assert any(d["pid"] == pid and d["wrote"] for d in primary["long_transactions"]["details"])
    assert primary["long_transactions"]["level"] == "warning"
    assert any(d["pid"] == pid for d in primary["idle_in_transaction"]["details"])
    assert primary["exception_blocks"]["level"] == "danger"
    assert {d["kind"] for d in primary["exception_blocks"]["details"]} == {"function", "trigger"}
    assert standby["replication"]["level"] == "warning" and standby["replication"]["details"][0]["paused"] is True
    assert table.returncode == 2
    assert "subxact_backends" in table.stdout and "danger" in table.stdout and "replica" in table.stdout
