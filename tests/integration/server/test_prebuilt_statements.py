"""Hot queries run statements built once (issue 24): building a Core statement and its cache key
for every call cost more CPU than SQLAlchemy's compiled cache saved. Each query below is called
twice with other values; both calls must send the very same statement objects, and give the rows
the values ask for (real PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from conveyor.server.db import queries

from tests.integration.server.trace_support import engine  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration


class Sent:
    """The statement objects executed on ``engine`` while recording."""

    def __init__(self, engine) -> None:  # noqa: ANN001
        self.statements: list[object] = []
        self._engine = engine.sync_engine
        event.listen(self._engine, "before_execute", self._executed)

    def _executed(self, conn, clauseelement, *args) -> None:  # noqa: ANN001
        self.statements.append(clauseelement)

    def close(self) -> None:
        event.remove(self._engine, "before_execute", self._executed)


async def test_pipeline_creation_and_status_queries_reuse_their_statements(engine) -> None:  # noqa: ANN001, F811
    async with engine.begin() as conn:
        one = await queries.projects.insert(conn, "one", "/tmp/one", "main")
        two = await queries.projects.insert(conn, "two", "/tmp/two", "main")
    sent: list[list[object]] = []
    rows = []
    for project, sha in ((one, "a" * 40), (two, "b" * 40)):
        recorder = Sent(engine)
        try:
            async with engine.begin() as conn:
                found = [await queries.projects.get(conn, key) for key in (project["id"], project["name"], f"root/{project['name'].upper()}")]
                variables = await queries.variables.for_job(conn, project["id"])
                first = await queries.pipelines.insert_row(conn, project["id"], "main", sha, {"V": "1"}, source="push", before_sha=None)
                second = await queries.pipelines.insert_row(conn, project["id"], "main", sha, {}, source="push")
                older = await queries.pipelines.cancelable_on_ref(conn, project["id"], "main", second["id"])
                elsewhere = await queries.pipelines.cancelable_on_ref(conn, project["id"], "main", second["id"], other_than_sha=sha)
                statuses = [(await queries.pipelines.set_status(conn, first["id"], status))
                            for status in ("pending", "running", "success")]  # fmt: skip
                jobs = await queries.jobs.for_pipeline(conn, first["id"]), await queries.jobs.for_pipeline(conn, first["id"], include_retried=True)
        finally:
            recorder.close()
        sent.append(recorder.statements)
        rows.append((project, found, variables, first, second, older, elsewhere, statuses, jobs))
    assert len(sent[0]) == len(sent[1]) and all(a is b for a, b in zip(*sent, strict=True))
    for project, found, variables, first, second, older, elsewhere, statuses, jobs in rows:
        assert [row["id"] for row in found] == [project["id"]] * 3  # by id, name, and path in any case
        assert variables == ([], [])
        assert (first["iid"], second["iid"], first["variables"], first["source"], first["status"]) == (1, 2, {"V": "1"}, "push", "created")
        assert [row["id"] for row in older] == [first["id"]] and elsewhere == []
        assert [s["status"] for s in statuses] == ["pending", "running", "success"]
        assert statuses[0]["started_at"] is None and statuses[1]["started_at"] is not None and statuses[1]["finished_at"] is None
        assert statuses[2]["started_at"] == statuses[1]["started_at"] and statuses[2]["finished_at"] is not None
        assert jobs == ([], [])
