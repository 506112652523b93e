"""GitLab's REST API driven by the real python-gitlab over a real socket: projects and the
repository, pipelines and jobs (logs, artifacts, actions, delete), pagination, runners admin.

python-gitlab is synchronous: each call runs in a worker thread while the server serves on this
test's event loop."""

from __future__ import annotations

import asyncio
import subprocess
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import gitlab
import httpx
import pytest

from tests.integration.server.test_artifacts import _upload, _zip
from tests.plugins.live import ROOT_TOKEN
from tests.plugins.repos import make_repo

pytestmark = pytest.mark.integration
T = TypeVar("T")

PIPELINE = """
stages: [build, deploy]
build:
  stage: build
  script: [make]
  coverage: '/cov (\\d+\\.\\d+)%/'
  artifacts:
    paths: [out/]
test:
  stage: build
  tags: [linux]
  allow_failure: true
  script: [make test]
deploy:
  stage: deploy
  when: manual
  script: [deploy]
"""


async def sync(call: Callable[[], T]) -> T:
    return await asyncio.to_thread(call)


def _client(live) -> gitlab.Gitlab:  # noqa: ANN001
    return gitlab.Gitlab(live.url, private_token=ROOT_TOKEN, timeout=30)


def _git(repo: Path, *args: str) -> str:
    command = ["git", "-C", str(repo), "-c", "user.name=Ada", "-c", "user.email=ada@conveyor.invalid", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


class Runner:
    """The runner API spoken by hand: take a job, log, upload artifacts, finish."""

    def __init__(self, live, token: str) -> None:  # noqa: ANN001
        self.http = httpx.AsyncClient(base_url=live.url + "/api/v4", timeout=30)
        self.live = live
        self.token = token

    async def take(self) -> dict[str, Any]:
        for _ in range(50):
            got = await self.http.post("/jobs/request", json={"token": self.token, "info": {"features": {"trace_checksum": True}}})
            if got.status_code == 201:
                job = got.json()
                ack = await self.http.put(f"/jobs/{job['id']}", json={"token": job["token"], "state": "running", "output": {}})
                assert ack.status_code == 200
                return job
            await asyncio.sleep(0.1)
        raise AssertionError("no job was handed out")

    async def run(self, job: dict[str, Any], log: bytes, state: str = "success", files: dict[str, bytes] | None = None) -> None:
        patched = await self.http.patch(
            f"/jobs/{job['id']}/trace", content=log,
            headers={"JOB-TOKEN": job["token"], "Content-Range": f"0-{len(log) - 1}"},
        )
        assert patched.status_code == 202, patched.text
        if files:
            assert (await _upload(self.live, job, [_zip(**files)])).status_code == 201
        body = {"token": job["token"], "state": state, "output": {"bytesize": len(log), "checksum": f"crc32:{zlib.crc32(log):08x}"}}
        if state == "failed":
            body["failure_reason"] = "script_failure"
        for _ in range(50):
            done = await self.http.put(f"/jobs/{job['id']}", json=body)
            if done.status_code == 200:
                return
            assert done.status_code == 202, done.text
            await asyncio.sleep(0.1)
        raise AssertionError("the final update was never accepted")


@pytest.fixture
async def setup(live_server, tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[tuple[gitlab.Gitlab, Any, Runner, Path]]]]:  # noqa: ANN001
    """``await setup(yaml)``: python-gitlab, a project "app" of a new repository, a runner."""
    runners: list[Runner] = []
    clients: list[gitlab.Gitlab] = []

    async def make(yaml: str = PIPELINE) -> tuple[gitlab.Gitlab, Any, Runner, Path]:
        repo = tmp_path / "app"
        make_repo(repo, yaml, {"README.md": "hello\n", "src/main.c": "int main;\n"})
        gl = _client(live_server)
        clients.append(gl)
        project = await sync(lambda: gl.projects.create({"name": "app", "import_url": str(repo)}))
        created = await sync(lambda: gl.http_post("/user/runners", post_data={"runner_type": "instance_type", "tag_list": "linux"}))
        runners.append(Runner(live_server, created["token"]))
        return gl, project, runners[-1], repo

    yield make
    for runner in runners:
        await runner.http.aclose()
    for client in clients:
        client.session.close()  # its keep-alive connections would hold the server's shutdown


async def test_projects_and_repository(live_server, setup) -> None:  # noqa: ANN001
    gl, project, runner, repo = await setup()
    base = live_server.url
    assert (project.name, project.path_with_namespace, project.default_branch) == ("app", "root/app", "main")
    assert project.web_url == f"{base}/root/app" and project.import_status == "finished"
    first = _git(repo, "rev-parse", "HEAD")
    _git(repo, "checkout", "-q", "-b", "feature/x")
    (repo / "src" / "main.c").write_text("int main(void) { return 0; }\n")
    _git(repo, "commit", "-qam", "Fix main\n\nWith a body.")
    second = _git(repo, "rev-parse", "HEAD")
    _git(repo, "checkout", "-q", "main")

    other = await sync(lambda: gl.projects.create({"path": "tools", "import_url": str(repo)}))
    listed = await sync(lambda: gl.projects.list(get_all=True, order_by="id", sort="asc"))
    assert [p.name for p in listed] == ["app", "tools"]
    assert [p.name for p in await sync(lambda: gl.projects.list(search="TOO", get_all=True))] == ["tools"]
    simple = await sync(lambda: gl.projects.list(simple=True, get_all=True))
    assert "import_url" not in simple[0].attributes and simple[0].path_with_namespace
    got = await sync(lambda: gl.projects.get("root/app"))
    assert got.id == project.id and got.permissions["project_access"]["access_level"] == 50

    other.name = "tools-renamed"
    other.default_branch = "feature/x"
    await sync(other.save)
    again = await sync(lambda: gl.projects.get(other.id))
    assert (again.name, again.default_branch) == ("tools-renamed", "feature/x")
    with pytest.raises(gitlab.GitlabUpdateError) as taken:
        other.name = "app"
        await sync(other.save)
    assert taken.value.response_code == 400 and taken.value.error_message == {"name": ["has already been taken"], "path": ["has already been taken"]}

    branches = await sync(lambda: project.branches.list(get_all=True))
    assert [(b.name, b.default, b.protected, b.commit["id"]) for b in branches] == [
        ("feature/x", False, False, second), ("main", True, True, first)
    ]
    assert (await sync(lambda: project.branches.get("feature/x"))).commit["title"] == "Fix main"
    with pytest.raises(gitlab.GitlabGetError) as missing:
        await sync(lambda: project.branches.get("nope"))
    assert missing.value.response_code == 404 and missing.value.error_message == "404 Branch Not Found"
    assert [b.name for b in await sync(lambda: project.branches.list(search="feat", get_all=True))] == ["feature/x"]

    commits = await sync(lambda: project.commits.list(ref_name="feature/x", get_all=True))
    assert [c.id for c in commits] == [second, first]
    assert (commits[0].title, commits[0].message, commits[0].author_email, commits[0].parent_ids) == (
        "Fix main", "Fix main\n\nWith a body.\n", "ada@conveyor.invalid", [first])
    one = await sync(lambda: project.commits.get(second))
    assert (one.short_id, one.stats, one.project_id, one.last_pipeline) == (second[:8], {"additions": 1, "deletions": 1, "total": 2}, project.id, None)
    tree = await sync(lambda: project.repository_tree(ref="main", get_all=True))
    assert sorted((e["path"], e["type"]) for e in tree) == [(".gitlab-ci.yml", "blob"), ("README.md", "blob"), ("src", "tree")]
    nested = await sync(lambda: project.repository_tree(path="src", ref="feature/x", recursive=True, get_all=True))
    assert [e["path"] for e in nested] == ["src/main.c"]
    assert await sync(lambda: project.files.raw(file_path="src/main.c", ref="feature/x")) == b"int main(void) { return 0; }\n"
    assert await sync(lambda: project.files.raw(file_path="README.md", ref="main")) == b"hello\n"

    await sync(other.delete)  # GitLab's 202
    with pytest.raises(gitlab.GitlabGetError) as gone:
        await sync(lambda: gl.projects.get(other.id))
    assert gone.value.error_message == "404 Project Not Found"


async def _objects(live) -> set[str]:  # noqa: ANN001
    root = Path(live.settings.object_store_url.removeprefix("file://"))
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


async def _archived(live, job_id: int) -> None:  # noqa: ANN001
    """The job's log sealed into its archive object (by this call or by the background archiver)."""
    for _ in range(100):
        await live.services.archiver.archive(job_id)
        if await live.services.objects.size(f"traces/{job_id}/job.log") is not None:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the log of job {job_id} was never archived")


async def test_pipelines_and_jobs(live_server, setup) -> None:  # noqa: ANN001
    gl, project, runner, _ = await setup()
    created = await sync(lambda: project.pipelines.create({"ref": "main", "variables": [
        {"key": "TARGET", "value": "eu"}, {"key": "CONF", "value": "a=1", "variable_type": "file"}]}))
    assert (created.status, created.source, created.ref, created.iid, created.user["username"]) == ("pending", "push", "main", 1, "root")
    assert created.web_url == f"{live_server.url}/root/app/-/pipelines/{created.id}" and created.detailed_status["group"] == "pending"
    variables = await sync(lambda: created.variables.list(get_all=True))
    assert sorted((v.key, v.value, v.variable_type) for v in variables) == [("CONF", "a=1", "file"), ("TARGET", "eu", "env_var")]

    build, test = await runner.take(), await runner.take()
    assert {build["job_info"]["name"], test["job_info"]["name"]} == {"build", "test"}
    if build["job_info"]["name"] != "build":
        build, test = test, build
    await runner.run(build, b"compiling\ncov 80.5%\nok\n", files={"out/app.bin": b"\x7fELF", "out/notes.txt": b"built\n"})
    await runner.run(test, b"1 test failed\n", state="failed")
    await _archived(live_server, build["id"])

    jobs = await sync(lambda: created.jobs.list(get_all=True))
    assert [(j.name, j.stage, j.status) for j in jobs] == [("build", "build", "success"), ("test", "build", "failed"), ("deploy", "deploy", "manual")]
    built = next(j for j in jobs if j.name == "build")
    assert built.artifacts_file == {"filename": "artifacts.zip", "size": built.artifacts_file["size"]}
    assert built.pipeline == {"id": created.id, "project_id": project.id, "ref": "main", "sha": created.sha, "status": "success"}
    assert built.runner["description"] == "" and built.commit["id"] == created.sha and built.web_url.endswith(f"/app/-/jobs/{built.id}")
    assert next(j for j in jobs if j.name == "test").tag_list == ["linux"]
    assert [j.name for j in await sync(lambda: created.jobs.list(scope=["failed", "manual"], get_all=True))] == ["test", "deploy"]
    assert [j.name for j in await sync(lambda: project.jobs.list(scope=["success"], get_all=True))] == ["build"]
    assert [j.name for j in await sync(lambda: project.jobs.list(scope="manual", get_all=True))] == ["deploy"]
    assert await sync(lambda: created.bridges.list(get_all=True)) == []

    job = await sync(lambda: project.jobs.get(built.id))
    assert await sync(job.trace) == b"compiling\ncov 80.5%\nok\n" and job.coverage == 80.5
    archive = await sync(job.artifacts)
    assert archive == _zip(**{"out/app.bin": b"\x7fELF", "out/notes.txt": b"built\n"})
    assert await sync(lambda: job.artifact("out/notes.txt")) == b"built\n"
    with pytest.raises(gitlab.GitlabGetError) as not_yet:
        await sync(lambda: project.artifacts.download(ref_name="other", job="build"))
    assert not_yet.value.response_code == 404  # no successful pipeline on that ref
    with pytest.raises(gitlab.GitlabGetError) as nothing:
        await sync(lambda: job.artifact("out/missing"))
    assert nothing.value.response_code == 404

    # a failed job retried, a manual one played with variables, the pipeline then succeeds
    retried = await sync(lambda: gl.http_post(f"/projects/{project.id}/jobs/{jobs[1].id}/retry"))
    assert (retried["name"], retried["status"]) == ("test", "pending") and retried["id"] != jobs[1].id
    await runner.run(await runner.take(), b"all good\n")
    played = await sync(lambda: gl.http_post(f"/projects/{project.id}/jobs/{jobs[2].id}/play",
                                             post_data={"job_variables_attributes": [{"key": "WHO", "value": "me"}]}))
    assert played["status"] == "pending"
    deploy = await runner.take()
    assert any((v["key"], v["value"]) == ("WHO", "me") for v in deploy["variables"])
    await runner.run(deploy, b"deployed\n")
    latest = await sync(lambda: project.pipelines.latest(ref="main"))
    assert (latest.id, latest.status, latest.coverage) == (created.id, "success", "80.50") and latest.duration is not None
    assert [j.name for j in await sync(lambda: created.jobs.list(include_retried=True, get_all=True))].count("test") == 2
    assert await sync(lambda: project.artifacts.download(ref_name="main", job="build")) == archive
    assert await sync(lambda: project.artifacts.raw("main", "out/app.bin", "build")) == b"\x7fELF"
    with pytest.raises(gitlab.GitlabGetError):
        await sync(lambda: project.artifacts.download(ref_name="main", job="nope"))

    # filters
    async with live_server.admin() as admin:  # curl --data, as in GitLab's docs
        form = "ref=main&variables[][key]=WHERE&variables[][value]=us&variables[][variable_type]=env_var"
        posted = await admin.post(f"/api/v4/projects/{project.id}/pipeline", content=form,
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert posted.status_code == 201, posted.text
    second = await sync(lambda: project.pipelines.get(posted.json()["id"]))
    assert [(v.key, v.value) for v in await sync(lambda: second.variables.list(get_all=True))] == [("WHERE", "us")]
    await sync(second.cancel)
    assert (await sync(lambda: project.pipelines.get(second.id))).status == "canceled"
    by = lambda **kw: [p.id for p in project.pipelines.list(get_all=True, **kw)]  # noqa: E731
    assert await sync(lambda: by()) == [second.id, created.id]
    assert await sync(lambda: by(status="success")) == [created.id]
    assert await sync(lambda: by(scope="finished", order_by="id", sort="asc")) == [created.id, second.id]
    assert await sync(lambda: by(sha=created.sha, source="push", ref="main", username="root")) == [second.id, created.id]
    assert await sync(lambda: by(updated_after="2999-01-01T00:00:00Z")) == []
    assert await sync(lambda: by(updated_before="2999-01-01", created_after="2000-01-01T00:00:00+02:00")) == [second.id, created.id]
    assert await sync(lambda: by(created_before="2000-01-01")) == []
    assert await sync(lambda: by(order_by="status", sort="asc")) == [second.id, created.id]
    with pytest.raises(gitlab.GitlabListError) as bad:
        await sync(lambda: by(status="bogus"))
    assert bad.value.error_message == "status does not have a valid value"
    await sync(second.retry)
    assert (await sync(lambda: project.pipelines.get(second.id))).status == "pending"

    # erase, then delete the pipeline: rows and stored bytes go
    stored = await _objects(live_server)
    assert f"artifacts/{built.id}/archive/artifacts.zip" in stored and f"traces/{built.id}/job.log" in stored
    await sync(job.erase)
    erased = await sync(lambda: project.jobs.get(built.id))
    assert erased.erased_at and erased.attributes["artifacts"] == [] and await sync(erased.trace) == b""
    assert not {k for k in await _objects(live_server) if f"/{built.id}/" in k}
    await sync(created.delete)
    with pytest.raises(gitlab.GitlabGetError) as deleted:
        await sync(lambda: project.pipelines.get(created.id))
    assert deleted.value.response_code == 404
    assert [p.id for p in await sync(lambda: project.pipelines.list(get_all=True))] == [second.id]
    left = await _objects(live_server)
    assert not [k for j in jobs for k in left if f"/{j.id}/" in k]


async def test_delete_removes_logs_and_artifacts(live_server, setup) -> None:  # noqa: ANN001
    gl, project, runner, _ = await setup("build:\n  script: [make]\n")
    pipeline = await sync(lambda: project.pipelines.create({"ref": "main"}))
    job = await runner.take()
    await runner.run(job, b"x" * 1000, files={"a.txt": b"a"})
    await _archived(live_server, job["id"])
    keys = {f"artifacts/{job['id']}/archive/artifacts.zip", f"traces/{job['id']}/job.log"}
    assert keys <= await _objects(live_server)
    await sync(pipeline.delete)
    assert not keys & await _objects(live_server)
    async with live_server.services.engine.connect() as conn:
        import sqlalchemy as sa

        left = await conn.execute(sa.text("SELECT (SELECT count(*) FROM jobs) + (SELECT count(*) FROM artifacts) + (SELECT count(*) FROM trace_chunks)"))
        assert left.scalar_one() == 0
    with pytest.raises(gitlab.GitlabDeleteError) as twice:
        await sync(pipeline.delete)
    assert twice.value.response_code == 404


async def test_pagination_headers_and_python_gitlab_following_them(live_server, setup) -> None:  # noqa: ANN001
    gl, project, runner, _ = await setup("a:\n  script: [x]\n")
    made = [(await sync(lambda: project.pipelines.create({"ref": "main"}))).id for _ in range(5)]
    async with live_server.admin() as admin:
        url = f"/api/v4/projects/{project.id}/pipelines"
        middle = await admin.get(url, params={"per_page": 2, "page": 2, "ref": "main"})
        assert [p["id"] for p in middle.json()] == made[::-1][2:4]
        head = middle.headers
        assert (head["X-Page"], head["X-Per-Page"], head["X-Next-Page"], head["X-Prev-Page"], head["X-Total"], head["X-Total-Pages"]) == (
            "2", "2", "3", "1", "5", "3")
        link = f"{live_server.url}{url}?ref=main"
        assert head["Link"] == (f'<{link}&page=1&per_page=2>; rel="prev", <{link}&page=3&per_page=2>; rel="next", '
                                f'<{link}&page=1&per_page=2>; rel="first", <{link}&page=3&per_page=2>; rel="last"')
        last = (await admin.get(url, params={"per_page": 2, "page": 3})).headers
        assert (last["X-Next-Page"], last["X-Prev-Page"]) == ("", "2") and 'rel="next"' not in last["Link"]
        past = await admin.get(url, params={"per_page": 2, "page": 9})
        assert past.json() == [] and past.headers["X-Total-Pages"] == "3"
        clamped = (await admin.get(url, params={"per_page": 1000, "page": 0})).headers
        assert (clamped["X-Per-Page"], clamped["X-Page"]) == ("100", "1")
        assert (await admin.get(url, params={"per_page": "x"})).json() == {"error": "per_page is invalid"}
        uncounted = (await admin.get(f"/api/v4/projects/{project.id}/jobs", params={"per_page": 2})).headers
        assert "X-Total" not in uncounted and "X-Total-Pages" not in uncounted and uncounted["X-Next-Page"] == "2"
        for path in ("/api/v4/projects", f"/api/v4/projects/{project.id}/variables", f"/api/v4/projects/{project.id}/triggers",
                     f"/api/v4/projects/{project.id}/pipeline_schedules", f"/api/v4/projects/{project.id}/hooks", "/api/v4/runners/all"):
            listed = await admin.get(path)
            assert listed.status_code == 200 and listed.headers["X-Page"] == "1" and listed.headers["X-Total"] == str(len(listed.json())), path
    for description in ("a", "b", "c"):  # a per-project list paged by the database as well
        await sync(lambda: project.triggers.create({"description": description}))
    assert [t.description for t in await sync(lambda: project.triggers.list(per_page=2, get_all=True))] == ["a", "b", "c"]
    async with live_server.admin() as admin:
        second = await admin.get(f"/api/v4/projects/{project.id}/triggers", params={"per_page": 2, "page": 2})
    assert [t["description"] for t in second.json()] == ["c"] and (second.headers["X-Total"], second.headers["X-Prev-Page"]) == ("3", "1")
    assert [p.id for p in await sync(lambda: project.pipelines.list(per_page=2, get_all=True))] == made[::-1]
    assert [p.id for p in await sync(lambda: list(project.pipelines.list(per_page=2, iterator=True)))] == made[::-1]
    assert len(await sync(lambda: project.jobs.list(per_page=2, get_all=True))) == 5


async def test_runners_admin(live_server, setup) -> None:  # noqa: ANN001
    gl, project, runner, _ = await setup("a:\n  tags: [linux]\n  script: [x]\n")
    other = await sync(lambda: gl.http_post("/user/runners", post_data={"runner_type": "instance_type", "description": "spare"}))
    assert await sync(lambda: gl.runners.list(get_all=True)) == []  # GitLab: the caller's project and group runners
    every = await sync(lambda: gl.runners.all(get_all=True))
    assert [(r.id, r.status, r.paused, r.is_shared) for r in every] == [
        (every[0].id, "never_contacted", False, True), (other["id"], "never_contacted", False, True)]
    first = await sync(lambda: gl.runners.get(every[0].id))
    assert (first.tag_list, first.run_untagged, first.access_level) == (["linux"], True, "not_protected")

    await sync(lambda: project.pipelines.create({"ref": "main"}))
    job = await runner.take()
    await runner.run(job, b"done\n")
    ran = await sync(lambda: first.jobs.list(get_all=True))
    assert [(j.id, j.status, j.project["id"]) for j in ran] == [(job["id"], "success", project.id)]
    assert [r.status for r in await sync(lambda: gl.runners.all(status="online", get_all=True))] == ["online"]
    assert [r.id for r in await sync(lambda: gl.runners.all(tag_list="linux", get_all=True))] == [first.id]

    first.description = "builder"
    first.paused = True
    first.tag_list = ["linux", "arm"]
    await sync(first.save)
    changed = await sync(lambda: gl.runners.get(first.id))
    assert (changed.description, changed.paused, changed.active, changed.tag_list) == ("builder", True, False, ["linux", "arm"])
    assert [r.id for r in await sync(lambda: gl.runners.all(paused=True, get_all=True))] == [first.id]
    await sync(lambda: gl.http_put(f"/runners/{first.id}", post_data={"active": "true"}))
    assert (await sync(lambda: gl.runners.get(first.id))).paused is False
    assert {r.id for r in await sync(lambda: project.runners.list(get_all=True))} == {first.id, other["id"]}
    with pytest.raises(gitlab.GitlabHttpError) as bad:
        await sync(lambda: gl.http_put(f"/runners/{first.id}", post_data={"maximum_timeout": 5}))
    assert (bad.value.response_code, bad.value.error_message) == (400, "400 Bad request - maximum_timeout needs to be at least 10 minutes")

    await sync(lambda: gl.runners.delete(other["id"]))
    with pytest.raises(gitlab.GitlabGetError) as gone:
        await sync(lambda: gl.runners.get(other["id"]))
    assert gone.value.error_message == "404 Runner Not Found"
    async with httpx.AsyncClient(base_url=live_server.url) as anonymous:
        for path in ("/api/v4/runners/all", f"/api/v4/runners/{first.id}", f"/api/v4/runners/{first.id}/jobs", "/api/v4/runners"):
            refused = await anonymous.get(path)
            assert (refused.status_code, refused.json()) == (401, {"message": "401 Unauthorized"}), path


async def test_the_cli_client_reads_every_page_of_a_pipeline_s_jobs(live_server, setup) -> None:  # noqa: ANN001
    from conveyor.cli.client import AdminClient

    gl, project, _, _ = await setup("".join(f"job{i:02d}:\n  script: [x]\n" for i in range(25)))
    pipeline = await sync(lambda: project.pipelines.create({"ref": "main"}))
    async with AdminClient(live_server.url, ROOT_TOKEN) as client:
        jobs = await client.jobs(str(project.id), pipeline.id)
    assert sorted(j["name"] for j in jobs) == [f"job{i:02d}" for i in range(25)]  # past the default 20 a page
