"""Project and group runners over real HTTP: a non-admin maintainer creates, lists, enables and
disables them with the real python-gitlab; a runner client speaking the runner API claims jobs,
and takes only the jobs of the projects its runner serves (two projects, each with a pending
job); ``GET /job`` answers a running job's token and refuses a finished one's."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import gitlab
import httpx
import pytest

from tests.plugins.live import ROOT_TOKEN
from tests.plugins.repos import make_repo
from tests.plugins.runner_clients import Assigned, RunnerClient

pytestmark = pytest.mark.integration
T = TypeVar("T")
ONE_JOB = "build:\n  script: [echo hi]\n"


async def sync(call: Callable[[], T]) -> T:
    return await asyncio.to_thread(call)


async def _raises(error: type[gitlab.GitlabError], call: Callable[[], Any]) -> gitlab.GitlabError:
    """``call`` in a thread (the server answers in this event loop), failing with ``error``."""
    with pytest.raises(error) as caught:
        await sync(call)
    return caught.value


def _people(url: str, tmp_path: Path) -> dict[str, Any]:
    """Root makes projects alpha and beta (mara maintains both, rex reports on alpha), group ops
    (mara owns it) with project gamma, and a pending job in each project."""
    root = gitlab.Gitlab(url, private_token=ROOT_TOKEN, timeout=30)
    root.auth()
    group = root.groups.create({"name": "Ops", "path": "ops"})
    made: dict[str, Any] = {"root": root, "group": group}
    for name in ("alpha", "beta", "gamma"):
        make_repo(tmp_path / name, ONE_JOB)
        extra = {"namespace_id": group.id} if name == "gamma" else {}
        made[name] = root.projects.create({"name": name, "import_url": str(tmp_path / name), **extra})
    for name, memberships in (("mara", (("alpha", 40), ("beta", 40))), ("rex", (("alpha", 20),))):
        user = root.users.create({"email": f"{name}@example.com", "username": name, "name": name.title()})
        token = user.personal_access_tokens.create({"name": "cli", "scopes": ["api"]}).token
        for project, level in memberships:
            made[project].members.create({"user_id": user.id, "access_level": level})
        made[name] = gitlab.Gitlab(url, private_token=token, timeout=30)
        made[name].auth()
    group.members.create({"user_id": made["mara"].user.id, "access_level": 50})
    made["jobs"] = {}
    for name in ("alpha", "beta", "gamma"):
        pipeline = made[name].pipelines.create({"ref": "main"})
        made["jobs"][name] = pipeline.jobs.list(get_all=True)[0].id
    return made


async def _claim(live, token: str) -> Assigned | None:  # noqa: ANN001
    """One first poll (answered at once): the job handed out, acknowledged, or None."""
    client = RunnerClient(token, "s_project_runner", [live.url], timeout=30)
    try:
        job = await client.request_job(live.url)
        if job is not None:
            await client.acknowledge(live.url, job)
        return job
    finally:
        await client.aclose()


async def _finish(live, job: Assigned) -> None:  # noqa: ANN001
    client = RunnerClient("unused", "s_project_runner", [live.url], timeout=30)
    try:
        assert (await client.patch_trace(live.url, job, b"hi\n")).status_code == 202
        assert (await client.finish(live.url, job, b"hi\n")).status_code == 200
    finally:
        await client.aclose()


async def test_project_and_group_runners(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    made = await sync(lambda: _people(live_server.url, tmp_path))
    root, mara, rex, alpha, beta = (made[k] for k in ("root", "mara", "rex", "alpha", "beta"))
    mara_alpha, mara_beta = (await sync(lambda: mara.projects.get(alpha.id)), await sync(lambda: mara.projects.get(beta.id)))
    spare = await sync(lambda: root.user.runners.create({"runner_type": "instance_type", "description": "spare"}))

    # a maintainer creates a project runner (python-gitlab's documented call); a reporter may not
    runner = await sync(lambda: mara.user.runners.create({"runner_type": "project_type", "project_id": alpha.id, "description": "alpha's"}))
    assert runner.token.startswith("glrt-t3_") and runner.token_expires_at is None
    refused = await _raises(gitlab.GitlabCreateError, lambda: rex.user.runners.create({"runner_type": "project_type", "project_id": alpha.id}))
    assert refused.response_code == 403
    assert [r.id for r in await sync(lambda: mara_alpha.runners.list(type="project_type", get_all=True))] == [runner.id]
    assert {r.id for r in await sync(lambda: mara_alpha.runners.list(get_all=True))} == {runner.id, spare.id}
    assert await sync(lambda: mara_beta.runners.list(type="project_type", get_all=True)) == []
    assert [r.id for r in await sync(lambda: mara.runners.list(get_all=True))] == [runner.id]
    assert await sync(lambda: rex.runners.list(get_all=True)) == []

    # the project runner takes alpha's job and never beta's (nor gamma's), though both are pending
    jobs = made["jobs"]
    taken = await _claim(live_server, runner.token)
    assert taken is not None and taken.id == jobs["alpha"]
    assert await _claim(live_server, runner.token) is None
    assert (await sync(lambda: beta.jobs.get(jobs["beta"]))).status == "pending"

    # GET /job: the running job for its token; 401 once it finished
    async with httpx.AsyncClient(base_url=live_server.url + "/api/v4") as http:
        own = await http.get("/job", headers={"JOB-TOKEN": taken.token})
        assert (own.status_code, own.json()["id"], own.json()["status"]) == (200, jobs["alpha"], "running")
        assert (await http.get("/job", params={"job_token": taken.token})).json()["pipeline"]["project_id"] == alpha.id
        await _finish(live_server, taken)
        assert (await http.get("/job", headers={"JOB-TOKEN": taken.token})).status_code == 401
        assert (await http.get("/job")).json() == {"message": "401 Unauthorized"}

    # enabled for beta (mara maintains it too), it takes beta's job; disabled again, and never
    # from its owner project
    await sync(lambda: mara_beta.runners.create({"runner_id": runner.id}))
    again = await _raises(gitlab.GitlabCreateError, lambda: mara_beta.runners.create({"runner_id": runner.id}))
    assert (again.response_code, again.error_message) == (400, {"runner_id": ["has already been taken"]})
    missing = await _raises(gitlab.GitlabHttpError, lambda: mara.http_post(f"/projects/{beta.id}/runners"))
    assert (missing.response_code, missing.error_message) == (400, "runner_id is missing")
    unknown = await _raises(gitlab.GitlabCreateError, lambda: mara_beta.runners.create({"runner_id": 999999}))
    assert (unknown.response_code, unknown.error_message) == (404, "404 Runner Not Found")
    shared = await _raises(gitlab.GitlabCreateError, lambda: mara_beta.runners.create({"runner_id": spare.id}))
    assert (shared.response_code, shared.error_message) == (403, "403 Forbidden - No access granted")
    assert (await _raises(gitlab.GitlabCreateError, lambda: root.projects.get(beta.id).runners.create({"runner_id": spare.id}))).error_message == {
        "runner": ["cannot have projects assigned"]}
    shown = await sync(lambda: mara.runners.get(runner.id))
    assert (shown.runner_type, shown.is_shared, [p["path_with_namespace"] for p in shown.projects], shown.groups) == (
        "project_type", False, ["root/alpha", "root/beta"], [])
    second = await _claim(live_server, runner.token)
    assert second is not None and second.id == jobs["beta"]
    used = await _raises(gitlab.GitlabDeleteError, lambda: mara.runners.delete(runner.id))
    assert (used.response_code, used.error_message) == (403, "403 Forbidden - Runner associated with more than one project")
    await sync(lambda: mara_beta.runners.delete(runner.id))
    owner = await _raises(gitlab.GitlabDeleteError, lambda: mara_alpha.runners.delete(runner.id))
    assert (owner.response_code, owner.error_message) == (
        403, "403 Forbidden - Only one project associated with the runner. Please remove the runner instead")
    assert [r.id for r in await sync(lambda: mara_beta.runners.list(type="project_type", get_all=True))] == []

    # runner details and settings: its owner project's maintainer, or an administrator; not a reporter
    assert (await _raises(gitlab.GitlabGetError, lambda: rex.runners.get(runner.id))).response_code == 403
    assert (await _raises(gitlab.GitlabGetError, lambda: mara.runners.get(spare.id))).response_code == 403
    shown.description = "renamed"
    await sync(shown.save)
    assert (await sync(lambda: root.runners.get(runner.id))).description == "renamed"
    assert {r.id for r in await sync(lambda: root.runners.all(get_all=True))} == {spare.id, runner.id}

    # a group runner (its owner creates it) takes the jobs of the group's projects only: gamma's,
    # not beta's newer one
    newer = await sync(lambda: beta.pipelines.create({"ref": "main"}))
    grouped = await sync(lambda: mara.user.runners.create({"runner_type": "group_type", "group_id": made["group"].id}))
    assert grouped.token.startswith("glrt-t2_")
    group_job = await _claim(live_server, grouped.token)
    assert group_job is not None and group_job.id == jobs["gamma"]
    assert await _claim(live_server, grouped.token) is None
    assert [g["name"] for g in (await sync(lambda: mara.runners.get(grouped.id))).groups] == ["Ops"]
    assert {r.id for r in await sync(lambda: mara.runners.list(get_all=True))} == {runner.id, grouped.id}

    # the instance runner takes any project's job
    anyone = await _claim(live_server, spare.token)
    assert anyone is not None and anyone.job["job_info"]["pipeline_id"] == newer.id
    await sync(lambda: mara.runners.delete(runner.id))
    assert (await _raises(gitlab.GitlabGetError, lambda: root.runners.get(runner.id))).response_code == 404
    for client in (root, mara, rex):
        client.session.close()


def _two_projects(url: str, tmp_path: Path) -> tuple[gitlab.Gitlab, Any, Any, Any, dict[str, int]]:
    """Root's projects alpha and beta, a pending job in each, and a project runner of alpha."""
    root = gitlab.Gitlab(url, private_token=ROOT_TOKEN, timeout=30)
    root.auth()
    projects, jobs = {}, {}
    for name in ("alpha", "beta"):
        make_repo(tmp_path / name, ONE_JOB)
        projects[name] = root.projects.create({"name": name, "import_url": str(tmp_path / name)})
        jobs[name] = projects[name].pipelines.create({"ref": "main"}).jobs.list(get_all=True)[0].id
    runner = root.user.runners.create({"runner_type": "project_type", "project_id": projects["alpha"].id})
    return root, projects["alpha"], projects["beta"], runner, jobs


async def test_a_conveyor_runner_process_runs_only_its_project_s_jobs(live_server, start_runner, tmp_path: Path) -> None:  # noqa: ANN001
    root, alpha, beta, runner, jobs = await sync(lambda: _two_projects(live_server.url, tmp_path))
    process = start_runner(live_server.url, runner.token)
    for _ in range(300):
        if (await sync(lambda: alpha.jobs.get(jobs["alpha"]))).status == "success":
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the project runner never ran its project's job")
    await asyncio.sleep(1.0)  # a few more polls (every 0.3 s): beta's job is not its to take
    assert process.proc.poll() is None
    other = await sync(lambda: beta.jobs.get(jobs["beta"]))
    assert (other.status, other.runner) == ("pending", None)
    assert (await sync(lambda: alpha.jobs.get(jobs["alpha"]))).runner["id"] == runner.id
    root.session.close()
