"""The statement observer: subtransactions counted per transaction and logged as one JSON line,
long transactions logged, the duration histogram, and the server-side timeouts on connections."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]

# Savepoints are sent from a child process: this test process fails any test that sends one.
SCRIPT = textwrap.dedent('''
    import asyncio, sys
    import sqlalchemy as sa
    from conveyor.server.db import StatementObserver, create_engine

    async def offending_unit_of_work(engine):
        async with engine.connect() as conn:
            await conn.begin()
            async with conn.begin_nested():          # SAVEPOINT ... RELEASE SAVEPOINT
                await conn.execute(sa.text("SELECT 1"))
            nested = await conn.begin_nested()       # SAVEPOINT ... ROLLBACK TO SAVEPOINT
            await nested.rollback()
            await conn.commit()
        async with engine.begin() as conn:           # a clean transaction: not logged
            await conn.execute(sa.text("SELECT 2"))

    async def main():
        observer = StatementObserver("log", long_transaction=60)
        engine = create_engine(sys.argv[1], observer)
        try:
            await offending_unit_of_work(engine)
        finally:
            await engine.dispose()
        print(observer.savepoints, observer.releases, observer.rollbacks_to, observer.transactions)

    asyncio.run(main())
''')


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_subtransactions_are_counted_per_transaction_and_logged_as_json(database_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, database_url], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "1", "1", "2"]
    lines = _json_lines(done.stderr)
    detected = [line for line in lines if line["event"] == "savepoint_detected"]
    assert len(detected) == 2 and all("offending_unit_of_work" in line["stack"] for line in detected)
    [transaction] = [line for line in lines if line["event"] == "db_transaction"]
    assert transaction["result"] == "commit"
    assert (transaction["savepoints_count"], transaction["releases_count"], transaction["rollbacks_to_count"]) == (2, 1, 1)
    assert any(statement.startswith("SAVEPOINT") for statement in transaction["sql"])
    assert len(transaction["savepoint_backtraces"]) == 2
    assert "offending_unit_of_work" in transaction["savepoint_backtraces"][0]
    assert transaction["duration_s"] >= 0 and not transaction["long"]


async def test_a_long_transaction_is_logged_with_its_duration_and_stack(database_url: str) -> None:
    from conveyor.server.db import StatementObserver, create_engine

    records: list[dict] = []
    durations: list[float] = []
    observer = StatementObserver("raise", long_transaction=0.3, sink=records.append)
    observer.add_transaction_listener(lambda duration, _record: durations.append(duration))
    engine = create_engine(database_url, observer, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("SELECT 1"))  # short: not logged
        async with engine.begin() as conn:
            await conn.execute(sa.text("SELECT pg_sleep(0.4)"))
    finally:
        await engine.dispose()
    assert len(durations) == 2 and durations[0] < 0.3 <= durations[1]
    [record] = records
    assert record["event"] == "db_transaction" and record["long"] and record["duration_s"] >= 0.4
    assert record["savepoints_count"] == 0 and "pg_sleep" in record["sql"][0]
    assert "test_a_long_transaction_is_logged" in record["stack"]
    json.dumps(record)  # one JSON line


async def test_connections_carry_statement_and_idle_in_transaction_timeouts(database_url: str) -> None:
    from conveyor.server.db import ConnectionBounds, StatementObserver, create_engine

    bounds = ConnectionBounds(statement_timeout=0.5, idle_in_transaction_timeout=0.4, application_name="conveyor-test")
    engine = create_engine(database_url, StatementObserver("raise"), pool_size=1, bounds=bounds)
    try:
        async with engine.connect() as conn:
            shown = [(await conn.execute(sa.text(f"SHOW {name}"))).scalar_one()
                     for name in ("statement_timeout", "idle_in_transaction_session_timeout", "application_name")]
            assert shown == ["500ms", "400ms", "conveyor-test"]
            with pytest.raises(sa.exc.DBAPIError, match="statement timeout"):
                await conn.execute(sa.text("SELECT pg_sleep(2)"))
        async with engine.connect() as conn:
            await conn.begin()
            await conn.execute(sa.text("SELECT 1"))
            await asyncio.sleep(1.0)  # idle in transaction past the bound: PostgreSQL ends the session
            with pytest.raises(sa.exc.DBAPIError, match="idle-in-transaction timeout|connection is closed"):
                await conn.execute(sa.text("SELECT 2"))
            await conn.invalidate()  # the session is gone; SQLAlchemy must not try to roll it back
    finally:
        await engine.dispose()


async def test_server_exports_subtransaction_counters_and_transaction_histogram(live_server) -> None:  # noqa: ANN001
    async with live_server.admin() as client:
        assert (await client.get("/api/v4/projects")).status_code == 200
        text = (await client.get("/metrics")).text
    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line and not line.startswith("#")}
    for name in ("conveyor_db_savepoints_total", "conveyor_db_savepoint_releases_total", "conveyor_db_savepoint_rollbacks_total"):
        assert values[name] == 0.0
    assert "# TYPE conveyor_db_savepoints_total counter" in text
    assert values["conveyor_db_transactions_total"] > 0
    assert values["conveyor_db_transaction_duration_seconds_count"] == values["conveyor_db_transactions_total"]
    settings = live_server.services.settings
    assert (settings.db_statement_timeout, settings.db_idle_in_transaction_timeout) == (60.0, 60.0)


def test_server_fixtures_count_a_savepoint_the_server_only_logged(tmp_path: Path) -> None:
    """A server process killed before its /metrics were read still fails the test: its JSON line counts."""
    from tests.plugins.live import ServerProcess

    log = tmp_path / "server.log"
    log.write_text('{"event": "savepoint_detected", "statement": "SAVEPOINT sa_savepoint_1", "policy": "raise"}\n')
    server = ServerProcess({}, 1, log)
    server.stop()  # never started: nothing to ask, the log remains
    assert server.savepoints_seen == 1.0


def test_subtransaction_kind_reads_only_the_statements_that_can_be_one() -> None:
    """Ordinary statements skip the patterns (issue 24); every spelling of a subtransaction is still found."""
    from conveyor.server.db.observer import subtransaction_kind

    found = {
        "SAVEPOINT sa_1": "savepoint", "  savepoint x": "savepoint", "\n\tSavePoint x": "savepoint",
        "/* tag */ SAVEPOINT x": "savepoint", "/*a*/ /*b*/\nrelease savepoint x": "release",
        "RELEASE SAVEPOINT x": "release", "ROLLBACK TO SAVEPOINT x": "rollback_to", "rollback to x": "rollback_to",
    }  # fmt: skip
    for statement, kind in found.items():
        assert subtransaction_kind(statement) == kind, statement
    for statement in ("SELECT 1", "select 1", "ROLLBACK", "RESET ALL", "REFRESH MATERIALIZED VIEW v", "RELEASED",
                      "SAVEPOINTS", "/* SAVEPOINT */ SELECT 1", "", "  ", "UPDATE jobs SET x = 1 /* savepoint */"):  # fmt: skip
        assert subtransaction_kind(statement) is None, statement
