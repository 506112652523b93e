"""What one one-job pipeline's whole life costs the database, on a live server over HTTP: created
(``POST /pipeline``), claimed (``jobs/request``), acknowledged, its log PATCHed, finished (the
final ``PUT``) and its log archived. Issue 24's goal: at most 10 transactions.

Counted as PostgreSQL counts them (``pg_stat_database.xact_commit``, what ``bench/e2e`` reads):
one per transaction the server's engine begins, one per statement it sends in autocommit. The
statistics themselves reach ``pg_stat_database`` only when a backend has been idle for up to
10 s, too late for a quick test, so the engine's events are counted instead (``Transactions``).
The background passes (scheduler, sweeps, bridges...) cost per second, not per job: they are
kept out of the window here (long intervals) and counted apart.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import event

from conveyor.server.db import comments
from tests.plugins.repos import make_repo
from tests.plugins.runner_clients import RunnerClient

pytestmark = pytest.mark.integration

ONE_JOB = "job:\n  variables:\n    GIT_STRATEGY: none\n  script: [echo one, echo two, echo three]\n"
QUIET = 3600  # seconds: no periodic pass runs inside the measured life


@pytest.fixture
def server_settings(server_settings):  # noqa: ANN001, ANN201
    return server_settings.with_overrides(
        schedule_interval=QUIET, sweep_interval=QUIET, poll_pass_interval=QUIET, schedule_pass_interval=QUIET,
        archive_sweep_interval=QUIET,
    )


class Transactions:
    """PostgreSQL transactions the server's engine causes, by who caused them: ``request`` (an
    HTTP request) or the background task's name (``trace-archiver``...)."""

    def __init__(self, engine) -> None:  # noqa: ANN001
        self.counts: Counter[str] = Counter()
        self.savepoints = 0
        self._engine = engine.sync_engine
        event.listen(self._engine, "begin", self._begin)
        event.listen(self._engine, "before_cursor_execute", self._statement)

    @staticmethod
    def _who() -> str:
        return comments.current_tags().get("task", "request")

    @staticmethod
    def _autocommit(conn) -> bool:  # noqa: ANN001
        return conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"

    def _begin(self, conn) -> None:  # noqa: ANN001
        if not self._autocommit(conn):  # BEGIN ... COMMIT/ROLLBACK: one
            self.counts[self._who()] += 1

    def _statement(self, conn, cursor, statement, *args) -> None:  # noqa: ANN001
        self.savepoints += statement.lstrip().upper().startswith("SAVEPOINT")
        if self._autocommit(conn):  # a statement outside BEGIN is a transaction of its own
            self.counts[self._who()] += 1

    def take(self, who: str = "request") -> int:
        """Transactions of ``who`` since the last ``take`` of it."""
        return self.counts.pop(who, 0)

    def close(self) -> None:
        event.remove(self._engine, "begin", self._begin)
        event.remove(self._engine, "before_cursor_execute", self._statement)


async def _archived(database_url: str, job_id: int, timeout: float = 10) -> None:
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        deadline = time.monotonic() + timeout
        while not await conn.fetchval("SELECT trace_archived FROM jobs WHERE id = $1", job_id):
            assert time.monotonic() < deadline, f"job {job_id}'s log not archived after {timeout} s"
            await asyncio.sleep(0.02)
    finally:
        await conn.close()


async def _life(live, admin, runner: RunnerClient, project_id: int, counted: Transactions | None = None) -> dict[str, int]:  # noqa: ANN001
    """One pipeline from creation to its archived log; the transactions of each step."""
    steps: dict[str, int] = {}

    def step(name: str) -> None:
        if counted is not None:
            steps[name] = counted.take()

    created = await admin.post(f"/api/v4/projects/{project_id}/pipeline")
    assert created.status_code == 201, created.text
    step("create")
    job = await runner.request_job(live.url)
    assert job is not None and job.job["job_info"]["pipeline_id"] == created.json()["id"]
    step("request")
    await runner.acknowledge(live.url, job)
    step("acknowledge")
    log = b"$ echo one\none\n$ echo two\ntwo\n$ echo three\nthree\n"
    patched = await runner.patch_trace(live.url, job, log)
    assert patched.status_code == 202, patched.text
    step("patch")
    final = await runner.finish(live.url, job, log)
    assert final.status_code == 200 and final.headers["Job-Status"] == "success", final.text
    step("finish")
    await _archived(live.settings.database_url, job.id)
    if counted is not None:
        steps["archive"] = counted.take("trace-archiver")
    return steps


async def test_a_one_job_pipeline_lives_in_at_most_8_transactions(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    make_repo(tmp_path / "app", ONE_JOB)
    async with live_server.admin() as admin:
        project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "app")})).json()
        token = (await admin.post("/api/v4/user/runners", json={"description": "life", "run_untagged": True})).json()["token"]
        runner = RunnerClient(token, "s_0123456789ab", [live_server.url])
        try:
            await _life(live_server, admin, runner, project["id"])  # tokens checked once, statements prepared
            counted = Transactions(live_server.services.engine)
            try:
                steps = await _life(live_server, admin, runner, project["id"], counted)
            finally:
                counted.close()
        finally:
            await runner.aclose()
    assert counted.savepoints == 0
    # creation: the project (access), the CI/CD variables rules see, the pipeline stored; the
    # runner's token, then the claim (one statement with the job's dependencies); the
    # acknowledgement (one UPDATE); the PATCH none (Redis, the job's token cached at the claim);
    # the final PUT one: the log's last chunk row and size recorded in the transaction that
    # finishes the job; the archive one: the job not read again (the finish handed its log over),
    # then flagged with its chunk rows deleted in one statement.
    # Was 10: the final PUT sealed the log in a transaction of its own, the archiver read the job.
    assert steps == {"create": 3, "request": 2, "acknowledge": 1, "patch": 0, "finish": 1, "archive": 1}, steps
    assert sum(steps.values()) <= 8
