"""sqlcommenter comments: every statement of a request or background task says who sent it, and
``pg_stat_activity`` shows it."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import pytest

from conveyor.server.db import comments
from conveyor.server.settings import ServerSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def server_settings(server_settings):  # noqa: ANN001, ANN201
    return server_settings.with_overrides(db_query_comments="full")  # the default is "route" (issue 24)


def test_comment_format_is_sqlcommenter() -> None:
    tags = {"route": "GET /api/v4/projects/{project}", "request_id": "r'1", "job_id": "7"}
    assert comments.comment(tags) == "/*job_id='7',request_id='r%271',route='GET%20%2Fapi%2Fv4%2Fprojects%2F%7Bproject%7D'*/"
    commenter = comments.Commenter("full")
    with comments.tagged(task="queue-sweeper"):
        assert commenter.apply("SELECT 1;") == "SELECT 1 /*application='conveyor',task='queue-sweeper'*/"
        assert commenter.apply("SELECT 1 /*mine*/") == "SELECT 1 /*mine*/"  # never a second comment
    with comments.tagged(route="GET /x", request_id="abc", job_id=3):
        assert comments.Commenter("route").apply("SELECT 1") == "SELECT 1 /*application='conveyor',route='GET%20%2Fx'*/"
    assert comments.Commenter("off").apply("SELECT 1") == "SELECT 1"
    # the default keeps each statement's text the same from request to request (asyncpg's cache)
    assert ServerSettings().db_query_comments == "route"


def test_a_routes_comment_is_rendered_once_and_follows_the_route() -> None:
    """Statements of one route share one rendered comment and one commented text (issue 24: URL-encoding
    the tags for every statement was ~6% of its CPU); a request whose route is then known gets its own."""

    class Route:
        def __init__(self, path: str) -> None:
            self.path_format = path

    scope = {"method": "PUT", "root_path": "", "route": None, "path_params": {}}
    commenter = comments.Commenter("route")
    with comments.tagged_request(scope, "abc"):
        unrouted = commenter.apply("SELECT 1")
        scope.update(route=Route("/api/v4/jobs/{job_id}"), path_params={"job_id": 7})
        first, second = commenter.apply("SELECT 1"), commenter.apply("SELECT 1")
        assert first is second  # the same object: asyncpg's statement cache hashes it once
        kept, long = comments._commented.cache_info().currsize, "SELECT 1" + " " * comments.CACHED_LENGTH + ", 2"
        assert commenter.apply(long) == "SELECT 1" + " " * comments.CACHED_LENGTH + ", 2 " + first.split(" ", 2)[2]
        assert comments._commented.cache_info().currsize == kept  # a long statement is not kept
        assert commenter.apply("SELECT 2") == "SELECT 2 /*application='conveyor',route='PUT%20%2Fapi%2Fv4%2Fjobs%2F%7Bjob_id%7D'*/"
        full = comments.Commenter("full").apply("SELECT 1")
        scope.update(route=Route("/api/v4/jobs/{job_id}/trace"), path_params={"job_id": 8})
        later = comments.Commenter("full").apply("SELECT 1")
    assert unrouted == "SELECT 1 /*application='conveyor',route='PUT%20%28unrouted%29'*/"
    assert full == "SELECT 1 /*application='conveyor',job_id='7',request_id='abc',route='PUT%20%2Fapi%2Fv4%2Fjobs%2F%7Bjob_id%7D'*/"
    assert later == "SELECT 1 /*application='conveyor',job_id='8',request_id='abc',route='PUT%20%2Fapi%2Fv4%2Fjobs%2F%7Bjob_id%7D%2Ftrace'*/"


async def _waiting(conn, database: str, needle: str, timeout: float = 15.0) -> list[str]:  # noqa: ANN001
    """Statements of Conveyor's blocked on our lock, as pg_stat_activity shows them while they wait."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        rows = await conn.fetch(
            "SELECT query FROM pg_stat_activity WHERE datname = $1 AND application_name = 'conveyor-server' "
            "AND state = 'active' AND query LIKE $2", database, f"%{needle}%",
        )
        if rows or asyncio.get_running_loop().time() > deadline:
            return [row["query"] for row in rows]
        await asyncio.sleep(0.05)


@pytest.fixture
def server_settings(server_settings):  # noqa: ANN001, ANN201
    """``full`` comments: the per-request tags this module reads are not in the default."""
    return server_settings.with_overrides(db_query_comments="full")


def test_the_default_leaves_per_request_tags_out() -> None:
    """Per-request values make every statement's text unique: asyncpg would prepare each again."""
    from conveyor.server.settings import ServerSettings

    commenter = comments.Commenter(ServerSettings().db_query_comments)
    with comments.tagged(route="POST /p", request_id="abc", job_id=3):
        first = commenter.apply("SELECT 1")
    with comments.tagged(route="POST /p", request_id="def", job_id=4):
        assert commenter.apply("SELECT 1") == first == "SELECT 1 /*application='conveyor',route='POST%20%2Fp'*/"


async def test_requests_and_background_tasks_are_named_in_pg_stat_activity(live_server) -> None:  # noqa: ANN001
    import asyncpg

    database = live_server.settings.database_url.rsplit("/", 1)[1]
    route = quote("GET /api/v4/projects/{project}/jobs/{job_id}", safe="")
    expected = f"/*application='conveyor',job_id='777',request_id='req-comment-test-1',route='{route}'*/"
    locker = await asyncpg.connect(live_server.settings.database_url)
    watcher = await asyncpg.connect(live_server.settings.database_url)
    try:
        async with live_server.admin() as client:
            await client.get("/api/v4/projects")  # the admin token is checked (and cached) before the lock
            # hold the tables still: Conveyor's next statements on them wait, visible with their comments
            transaction = locker.transaction()
            await transaction.start()
            await locker.execute("LOCK TABLE projects, jobs IN ACCESS EXCLUSIVE MODE")
            request = asyncio.create_task(
                client.get("/api/v4/projects/nowhere/jobs/777", headers={"X-Request-Id": "req-comment-test-1"})
            )
            found = await _waiting(watcher, database, "request_id='req-comment-test-1'")
            # the sweeper and scheduler run every second in the background
            tasks = await _waiting(watcher, database, "task='queue-")
            await transaction.rollback()
            answer = await request
    finally:
        await locker.close()
        await watcher.close()
    assert answer.status_code == 404 and answer.headers["X-Request-Id"] == "req-comment-test-1"
    assert found and found[0].endswith(expected), found
    assert tasks and all("route=" not in query and "request_id=" not in query for query in tasks), tasks
