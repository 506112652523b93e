"""The queue under concurrency, on real PostgreSQL (the trace stores: test_trace_store.py)."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from conveyor.server.db import StatementObserver, create_engine, queries
from conveyor.server.queue import dispatch
from conveyor.server.queue.schedule import ScheduleResult, Scheduler

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(database_url: str):  # noqa: ANN201
    engine = create_engine(database_url, StatementObserver("raise"), pool_size=20)
    yield engine
    await engine.dispose()


async def _pending_jobs(engine, count: int) -> tuple[list[int], list[int]]:  # noqa: ANN001
    async with engine.begin() as conn:
        project = await queries.projects.insert(conn, "p", "/tmp/p", "main")
        pipeline = await queries.pipelines.insert(conn, project["id"], "main", "0" * 40, {})
        specs = [{"name": f"j{i}", "stage": "test", "stage_idx": 0, "script": ["true"]} for i in range(count)]
        await queries.jobs.insert_many(conn, pipeline, project["id"], specs)
        ids = [j["id"] for j in await queries.jobs.for_pipeline(conn, pipeline)]
        await queries.jobs.enqueue(conn, ids)
        runners = [await queries.runners.insert(conn, f"hash{i}", "r") for i in range(10)]
    return ids, runners


async def test_concurrent_claims_hand_out_each_job_once(engine) -> None:  # noqa: ANN001
    ids, runners = await _pending_jobs(engine, 60)
    claimed: list[int] = []

    async def worker(runner_id: int) -> None:
        while True:
            async with engine.begin() as conn:
                claimant = queries.jobs.Claimant(runner_id, None, [], run_untagged=True, protected_only=False)
                job = await queries.jobs.claim(conn, claimant, f"tok-{runner_id}-{len(claimed)}")
            if job is None:
                return
            claimed.append(job["id"])

    await asyncio.gather(*(worker(r) for r in runners))
    assert sorted(claimed) == sorted(ids)
    async with engine.connect() as conn:
        left = (await conn.execute(sa.text("SELECT count(*) FROM pending_jobs"))).scalar()
        statuses = set((await conn.execute(sa.text("SELECT status FROM jobs"))).scalars())
    assert left == 0 and statuses == {"running"}


def _plan_nodes(node: dict):  # noqa: ANN201
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)


async def test_a_claim_visits_only_its_own_group_however_large_the_backlog(engine) -> None:  # noqa: ANN001
    # regression: with equality quals the planner reduced the group's ORDER BY to job_id and
    # walked the primary key past every job of another group (14 ms at 100,000 pending tagged
    # jobs in bench/dispatch, against 0.4 ms now); counted in rows, not timed
    async with engine.begin() as conn:
        project = await queries.projects.insert(conn, "big", "/tmp/big", "main")
        pipeline = await queries.pipelines.insert(conn, project["id"], "main", "0" * 40, {})
        await conn.execute(sa.text(
            "WITH backlog AS (INSERT INTO jobs (pipeline_id, project_id, name, stage, stage_idx, status, spec, tags)"
            " SELECT :pipeline, :project, 'gpu-' || g, 'test', 0, 'pending', '{}'::jsonb, '{gpu}'"
            " FROM generate_series(1, 100000) g RETURNING id, project_id, tags)"
            " INSERT INTO pending_jobs (job_id, project_id, tags) SELECT id, project_id, tags FROM backlog"),
            {"pipeline": pipeline, "project": project["id"]})
        spec = {"name": "untagged", "stage": "test", "stage_idx": 0, "script": ["true"]}
        await queries.jobs.insert_many(conn, pipeline, project["id"], [spec])
        created = [j["id"] for j in await queries.jobs.for_pipeline(conn, pipeline) if j["status"] == "created"]
        await queries.jobs.enqueue(conn, created)
        runner = await queries.runners.insert(conn, "plan-hash", "r")
        # a project runner of the same project: its claim walks the same groups (0016)
        scoped = await queries.runners.insert(conn, "plan-hash-2", "p", runner_type="project_type")
        await queries.runner_scopes.add_project(conn, scoped, project["id"])
    async with engine.connect() as conn:
        await conn.execute(sa.text("ANALYZE pending_jobs"))
        await conn.commit()
    statement = queries.jobs.sql.query("claim_job")
    for runner_id, is_scoped in ((runner, False), (scoped, True)):
        params = {"runner_id": runner_id, "runner_manager_id": None, "runner_tags": [], "run_untagged": True,
                  "protected_only": False, "scoped": is_scoped, "token_hash": "plan-token"}
        async with engine.connect() as conn:
            explained = await conn.execute(sa.text(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement.text}"), params)
            plan = explained.scalar_one()[0]["Plan"]
            await conn.rollback()
        nodes = list(_plan_nodes(plan))
        removed = sum(node.get("Rows Removed by Filter", 0) for node in nodes)
        assert removed < 50, f"the claim (scoped: {is_scoped}) filtered {removed} rows of other groups"


async def test_a_claim_that_deadlocks_with_a_cancel_is_run_again_not_failed(engine) -> None:  # noqa: ANN001
    """A cancel locks the pipeline, then its jobs; a claim locks a pending job, then the pipeline
    (to start it). PostgreSQL aborts one of the two (CI: a 500 on a job request); the claim is
    run again."""
    ids, runners = await _pending_jobs(engine, 1)
    async with engine.connect() as conn:
        pipeline = (await conn.execute(sa.text("SELECT pipeline_id FROM jobs WHERE id = :id"), {"id": ids[0]})).scalar()
    claimant = queries.jobs.Claimant(runners[0], None, [], run_untagged=True, protected_only=False)
    async with engine.connect() as cancel:
        await cancel.execute(sa.text("SET deadlock_timeout = '3s'"))  # the claim's check (1 s) runs first
        await cancel.execute(sa.text("SELECT id FROM pipelines WHERE id = :id FOR UPDATE"), {"id": pipeline})
        claiming = asyncio.create_task(dispatch.claim(engine, claimant, "token-hash"))
        await asyncio.sleep(0.5)  # the claim holds the job and waits for the pipeline
        await cancel.execute(sa.text("SELECT id FROM jobs WHERE id = :id FOR UPDATE"), {"id": ids[0]})
        await cancel.commit()  # got the job's lock: the claim was the deadlock's victim
    claimed = await claiming
    assert claimed is not None and claimed[0]["id"] == ids[0]


async def test_a_claim_in_a_large_pipeline_reads_neither_its_running_jobs_nor_its_later_stages(engine) -> None:  # noqa: ANN001
    # regression (issue 24): bench/dispatch's drain claims 10,000 jobs of one stage-2 pipeline of
    # one project. Since dotenv variables joined the dependency lookup (issue 21) it walked every
    # job of the pipeline (3.7 ms per claim at 10,000; the drain fell from ~100 to ~75 jobs/s),
    # and the fair order counted the project's running jobs although only one project was eligible
    async with engine.begin() as conn:
        project = await queries.projects.insert(conn, "wide", "/tmp/wide", "main")
        pipeline = await queries.pipelines.insert(conn, project["id"], "main", "0" * 40, {})
        await conn.execute(sa.text(
            "INSERT INTO jobs (pipeline_id, project_id, name, stage, stage_idx, status, spec, tags)"
            " SELECT :pipeline, :project, 'running-' || g, 'test', 2, 'running', '{}'::jsonb, '{}'"
            " FROM generate_series(1, 5000) g"), {"pipeline": pipeline, "project": project["id"]})
        spec = {"name": "last", "stage": "test", "stage_idx": 2, "script": ["true"]}
        await queries.jobs.insert_many(conn, pipeline, project["id"], [spec])
        created = [j["id"] for j in await queries.jobs.for_pipeline(conn, pipeline) if j["status"] == "created"]
        await queries.jobs.enqueue(conn, created)
        runner = await queries.runners.insert(conn, "wide-hash", "r")
    async with engine.connect() as conn:
        await conn.execute(sa.text("ANALYZE jobs"))
        await conn.commit()
    params = {"runner_id": runner, "runner_manager_id": None, "runner_tags": [], "run_untagged": True,
              "protected_only": False, "scoped": False, "token_hash": "wide-token"}
    async with engine.connect() as conn:
        explained = await conn.execute(sa.text(f"EXPLAIN (ANALYZE, FORMAT JSON) {queries.jobs.sql.query('claim_job').text}"), params)
        claim_plan = list(_plan_nodes(explained.scalar_one()[0]["Plan"]))
        await conn.rollback()
    counted = [n for n in claim_plan if n.get("Relation Name") == "jobs" and n.get("Actual Loops")
               and "running" in f"{n.get('Index Cond', '')} {n.get('Filter', '')}"]
    assert not counted, f"the claim read the project's running jobs: {counted}"
    removed = sum(node.get("Rows Removed by Filter", 0) for node in claim_plan)
    assert removed < 50, f"the claim (its dependencies) read {removed} jobs of its own stage"

    lookup = []

    class Explaining:  # the real connection; each statement is EXPLAIN ANALYZEd before it runs
        def __init__(self, conn) -> None:  # noqa: ANN001
            self.conn = conn

        async def execute(self, statement, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN204
            compiled = statement.compile(dialect=self.conn.dialect, compile_kwargs={"literal_binds": True})
            lookup.append((await self.conn.execute(sa.text(f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled}"))).scalar_one()[0]["Plan"])
            return await self.conn.execute(statement, *args, **kwargs)

    async with engine.connect() as conn:
        found = await queries.artifacts.for_dependencies(Explaining(conn), pipeline, 2, None, None)  # type: ignore[arg-type]
    assert found == []
    removed = sum(node.get("Rows Removed by Filter", 0) for node in _plan_nodes(lookup[0]))
    assert removed < 50, f"the dependency lookup read {removed} jobs of later stages"


async def test_an_idle_scheduler_pass_is_one_read_transaction(database_url: str) -> None:
    # issue 24: the scheduler runs every second on every server process; its two work lists
    # (due delayed pipelines, resource groups with waiting jobs) were two transactions a pass
    observer = StatementObserver("raise")
    engine = create_engine(database_url, observer)
    try:
        scheduler = Scheduler(engine, None, interval=1.0)  # type: ignore[arg-type] (nothing to wake)
        await scheduler.tick()  # connect
        before = observer.transactions
        assert await scheduler.tick() == ScheduleResult(0, 0)
        assert observer.transactions - before == 1
    finally:
        await engine.dispose()

