"""``POST /api/v4/projects/:id/pipeline`` through a real server: what one creation costs the
database (statements and transactions, counted on the server's engine), and that the answer and
the recorded starter are what a later read shows."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import event

from conveyor.server.db import comments
from tests.plugins.repos import make_repo

pytestmark = pytest.mark.integration

ONE_JOB = "job:\n  script: [echo one]\n"


class Counted:
    """Statements and transactions of the requests sent with one ``X-Request-Id``."""

    def __init__(self, engine, request_id: str) -> None:  # noqa: ANN001
        self.request_id, self.counts = request_id, Counter()
        self._engine = engine.sync_engine
        event.listen(self._engine, "before_cursor_execute", self._statement)
        event.listen(self._engine, "begin", self._begin)

    def _mine(self) -> bool:
        return comments.current_tags().get("request_id") == self.request_id

    def _statement(self, conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if self._mine():
            self.counts["statements"] += 1
            self.counts["savepoints"] += statement.lstrip().upper().startswith("SAVEPOINT")

    def _begin(self, conn) -> None:  # noqa: ANN001
        if self._mine():
            self.counts["transactions"] += 1
            # a real one: BEGIN and COMMIT/ROLLBACK round trips (an autocommit connection sends neither)
            self.counts["begun"] += conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT"

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._statement)
        event.remove(self._engine, "begin", self._begin)


async def _counted(live_server, url: str, request_id: str) -> Counter:  # noqa: ANN001
    counted = Counted(live_server.services.engine, request_id)
    try:
        async with live_server.admin() as admin:
            answer = await admin.post(url, headers={"X-Request-Id": request_id})
    finally:
        counted.close()
    assert answer.status_code == 201, answer.text
    return counted.counts


async def test_a_one_job_pipeline_costs_few_statements(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    make_repo(tmp_path / "app", ONE_JOB)
    async with live_server.admin() as admin:
        project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "app")})).json()
        url = f"/api/v4/projects/{project['id']}/pipeline"
        assert (await admin.post(url)).status_code == 201  # the token is checked (and cached) once
    counts = await _counted(live_server, url, "creation-cost")
    # the project; the CI/CD variables rules see; one transaction storing the pipeline (iid and
    # row with its first status in one statement, the jobs in one, enqueued, older pipelines of
    # the ref).
    # Was 15 statements in 6 transactions: the user row, the pipeline's lock and its jobs read
    # again, the answer read back with its coverage.
    assert counts["savepoints"] == 0
    assert 1 <= counts["transactions"] <= 3, counts
    assert 4 <= counts["statements"] <= 7, counts
    # the project is a single read, in autocommit: no BEGIN ... ROLLBACK around it (issue 24; was
    # 3). The variables' two reads keep theirs: in autocommit each would be a transaction of its own
    assert counts["begun"] == 2, counts
    # a new commit: the same, and each of the two older pending pipelines canceled in a
    # transaction of its own (locked, its jobs read and locked, the job canceled and dequeued,
    # the pipeline's status and auto_canceled_by): was 12 statements for each
    _commit(tmp_path / "app", "README", "a new commit\n")
    canceling = await _counted(live_server, url, "creation-cancels")
    assert canceling["savepoints"] == 0
    assert canceling["transactions"] <= 3 + 2 and canceling["statements"] <= 7 + 2 * 6, canceling


async def test_a_second_creation_builds_no_statement_but_the_jobs_insert(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    """The project, the CI/CD variables, the pipeline row and the auto-cancel lookup run statements
    built once (issue 24: building each Core statement and its cache key per call cost more CPU
    than SQLAlchemy's compiled cache saved): a second creation sends the very same objects."""
    make_repo(tmp_path / "app", ONE_JOB)
    sent: dict[str, list] = {}

    def executed(conn, clauseelement, *args) -> None:  # noqa: ANN001
        request = comments.current_tags().get("request_id")
        if request is not None:
            sent.setdefault(request, []).append(clauseelement)

    engine = live_server.services.engine.sync_engine
    async with live_server.admin() as admin:
        project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "app")})).json()
        url = f"/api/v4/projects/{project['id']}/pipeline"
        assert (await admin.post(url)).status_code == 201  # the token is checked (and cached) once
        event.listen(engine, "before_execute", executed)
        try:
            for request_id in ("first-creation", "second-creation"):
                assert (await admin.post(url, headers={"X-Request-Id": request_id})).status_code == 201
        finally:
            event.remove(engine, "before_execute", executed)
    first, second = sent["first-creation"], sent["second-creation"]
    assert len(first) == len(second) >= 5
    new = [str(statement) for statement in second if not any(statement is seen for seen in first)]
    assert len(new) == 1 and new[0].startswith("INSERT INTO jobs"), new


async def test_the_answer_is_the_stored_pipeline_and_its_starter_is_current(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    make_repo(tmp_path / "app", ONE_JOB)
    async with live_server.admin() as admin:
        project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "app")})).json()
        base = f"/api/v4/projects/{project['id']}"
        created = (await admin.post(f"{base}/pipeline")).json()
        read = (await admin.get(f"{base}/pipelines/{created['id']}")).json()
        assert created["status"] == "pending" and created["iid"] == 1
        assert {k: v for k, v in created.items() if k != "status"} == {k: v for k, v in read.items() if k != "status"}
        assert created["user"]["username"] == "root" and created["user"]["name"] == "Administrator"
        # the name read with the (cached) token is forgotten when the user changes
        assert (await admin.put("/api/v4/users/1", json={"name": "Ada Root"})).status_code == 200
        second = (await admin.post(f"{base}/pipeline")).json()
        assert second["iid"] == 2 and second["user"]["name"] == "Ada Root"
        jobs = (await admin.get(f"{base}/pipelines/{second['id']}/jobs")).json()
        assert jobs and jobs[0]["user"]["name"] == "Ada Root"


def _commit(repo: Path, name: str, text: str) -> None:
    import subprocess

    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_text(text)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@conveyor.invalid"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", name], check=True)


class GitSpy:
    """The git commands the server's ``GitSources`` runs (real git; only counted)."""

    def __init__(self, sources, monkeypatch) -> None:  # noqa: ANN001
        self.commands: list[str] = []
        real = sources._git_bytes

        async def counted(repo, *args, **kwargs):  # noqa: ANN001, ANN202
            self.commands.append(args[0])
            return await real(repo, *args, **kwargs)

        monkeypatch.setattr(sources, "_git_bytes", counted)


RULES = """
docker:
  script: [build]
  rules: [{exists: [Dockerfile]}]
src:
  script: [make]
  rules: [{changes: [src/*]}]
docs:
  script: [mkdocs]
  rules: [{changes: [docs/*]}]
"""


async def test_a_new_commit_reads_git_once_per_answer_and_files_only_when_a_rule_asks(
    live_server, tmp_path: Path, monkeypatch  # noqa: ANN001
) -> None:
    repo = tmp_path / "app"
    make_repo(repo, ONE_JOB)
    spy = GitSpy(live_server.services.pipelines.sources, monkeypatch)
    async with live_server.admin() as admin:
        project = (await admin.post("/api/v4/projects", json={"source": str(repo)})).json()
        base = f"/api/v4/projects/{project['id']}"
        _commit(repo, "README", "a new commit, the same config\n")
        spy.commands.clear()
        assert (await admin.post(f"{base}/pipeline")).status_code == 201
        # the config with the commit and its parent, in one process (the branch is read from its
        # ref file). No diff, no tree: the config has neither rules:changes nor rules:exists
        assert spy.commands == ["show"], spy.commands
        spy.commands.clear()
        assert (await admin.post(f"{base}/pipeline")).status_code == 201
        assert spy.commands == []  # the same commit: nothing but its ref file is read again

        _commit(repo, "Dockerfile", "FROM scratch\n")
        _commit(repo, ".gitlab-ci.yml", RULES)
        _commit(repo, "src/main.c", "int main;\n")
        spy.commands.clear()
        created = (await admin.post(f"{base}/pipeline")).json()
        jobs = (await admin.get(f"{base}/pipelines/{created['id']}/jobs")).json()
    assert sorted(job["name"] for job in jobs) == ["docker", "src"]  # docs/ did not change
    assert sorted(spy.commands) == ["diff", "ls-tree", "show"], spy.commands


async def test_a_burst_of_creations_takes_turns_and_creates_every_pipeline(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    """``pipeline_creation_concurrency`` (1 by default): eight creations sent at once all answer
    201 with pipelines of their own, one in its turn at a time, the others waiting theirs
    (queue/admission.py); the gauges are back at 0 after."""
    make_repo(tmp_path / "app", ONE_JOB)
    admission = live_server.services.pipelines.admission
    assert admission.limit == 1 and admission.step_aside == 0.25
    admission.step_aside = 30  # a loaded machine's slow creation would step aside: not what is tested here
    async with live_server.admin() as admin:
        project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "app")})).json()
        url = f"/api/v4/projects/{project['id']}/pipeline"
        assert (await admin.post(url)).status_code == 201  # caches warm: the burst's creations overlap
        answers = await asyncio.gather(*(admin.post(url) for _ in range(8)))
        assert [answer.status_code for answer in answers] == [201] * 8, [a.text for a in answers]
        assert len({answer.json()["id"] for answer in answers}) == 8
        metrics = (await admin.get("/metrics")).text
    assert admission.peak == 1 and admission.stepped_aside == 0
    assert "conveyor_pipeline_creations_in_progress 0.0" in metrics
    assert "conveyor_pipeline_creations_waiting 0.0" in metrics
