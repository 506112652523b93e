"""The auto-cancel lookup a new pipeline makes in its creating transaction (real PostgreSQL):
only older cancelable pipelines of the ref built for another commit, id and sha."""

from __future__ import annotations

import pytest

from conveyor.server.db import queries
from conveyor.server.queue import interrupt

from tests.integration.server.trace_support import engine  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration


async def test_reruns_of_one_commit_cost_no_rows_and_other_commits_are_found(engine) -> None:  # noqa: ANN001
    async with engine.begin() as conn:
        project = await queries.projects.insert(conn, "p", "/tmp/p", "main")
        same = [await queries.pipelines.insert(conn, project["id"], "main", "a" * 40, {}) for _ in range(3)]
        other = await queries.pipelines.insert(conn, project["id"], "main", "b" * 40, {})
        elsewhere = await queries.pipelines.insert(conn, project["id"], "feature", "c" * 40, {})
        new = await queries.pipelines.insert(conn, project["id"], "main", "a" * 40, {})
    async with engine.connect() as conn:
        older = await interrupt.older_cancelable(conn, project["id"], "main", new, "a" * 40)
        everything = await queries.pipelines.cancelable_on_ref(conn, project["id"], "main", before_id=new)
    assert [dict(row) for row in older] == [{"id": other, "sha": "b" * 40}]
    assert [row["id"] for row in everything] == [*same, other] and elsewhere not in [row["id"] for row in everything]
