"""Bridges through a real server and PostgreSQL, the runner's side played over HTTP: the
variables a child pipeline's jobs get, a child job's failure failing its depend bridge, a retry
inside the child re-opening the bridge, a bridge retried making a new child, the nesting limit."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.server.test_runner_api import _request, _setup
from tests.plugins.repos import make_repo

pytestmark = pytest.mark.integration

PARENT = """
variables: {A: "1"}
stages: [test, deploy]
child:
  variables: {B: $CI_PIPELINE_ID}
  trigger: {include: child.yml, strategy: depend}
after:
  stage: deploy
  script: [x]
"""
CHILD = "c:\n  script: [x]\n"


async def _until(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise TimeoutError("condition not reached")


async def _finish(live: Any, job: dict[str, Any], state: str) -> None:
    body = {"token": job["token"], "state": state, "output": {"bytesize": 0}}
    if state == "failed":
        body["failure_reason"] = "script_failure"
    async with httpx.AsyncClient(base_url=live.url) as client:
        assert (await client.put(f"/api/v4/jobs/{job['id']}", json=body)).status_code == 200


async def test_child_variables_failure_reopen_and_bridge_retry(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, token, _ = await _setup(live_server, tmp_path, "x:\n  script: [x]\n")
    make_repo(tmp_path / "app", PARENT, {"child.yml": CHILD})
    project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "app"), "name": "app"})).json()
    base = f"/api/v4/projects/{project['id']}"
    try:
        parent = (await admin.post(f"{base}/pipeline")).json()

        async def bridge() -> dict[str, Any]:
            (found,) = (await admin.get(f"{base}/pipelines/{parent['id']}/bridges")).json()
            return found

        child = (await _until(lambda: _downstream(bridge)))
        job = (await _request(live_server, token)).json()
        variables = {v["key"]: v["value"] for v in job["variables"]}
        assert (job["job_info"]["name"], job["job_info"]["pipeline_id"]) == ("c", child["id"])
        assert (variables["A"], variables["B"]) == ("1", str(parent["id"]))  # forwarded, expanded
        assert variables["CI_PIPELINE_SOURCE"] == "parent_pipeline"
        await _finish(live_server, job, "failed")
        assert (await _until(lambda: _status(bridge, "failed")))["failure_reason"] is None
        parent_state = (await admin.get(f"{base}/pipelines/{parent['id']}")).json()
        assert parent_state["status"] == "failed"
        # a retry inside the child re-opens the bridge and the parent
        assert (await admin.post(f"{base}/jobs/{job['id']}/retry")).status_code == 201
        await _until(lambda: _status(bridge, "running"))
        again = (await _request(live_server, token)).json()
        assert again["job_info"]["name"] == "c"
        await _finish(live_server, again, "success")
        await _until(lambda: _status(bridge, "success"))
        after = (await _request(live_server, token)).json()
        assert after["job_info"]["name"] == "after"  # the stage after the bridge runs now
        await _finish(live_server, after, "success")
        # retrying the bridge makes a new child pipeline
        first_child = (await bridge())["downstream_pipeline"]["id"]
        old = await bridge()
        assert (await admin.post(f"{base}/jobs/{old['id']}/retry")).status_code == 201
        newer = await _until(lambda: _newer_child(bridge, first_child))
        assert newer["source"] == "parent_pipeline"
    finally:
        await admin.aclose()


async def _downstream(bridge: Any) -> dict[str, Any] | None:
    return (await bridge())["downstream_pipeline"]


async def _status(bridge: Any, status: str) -> dict[str, Any] | None:
    found = await bridge()
    return found if found["status"] == status else None


async def _newer_child(bridge: Any, old: int) -> dict[str, Any] | None:
    found = (await bridge())["downstream_pipeline"]
    return found if found and found["id"] != old else None


NESTED = "level:\n  trigger: {include: nested.yml}\n"


async def test_child_pipelines_nest_two_levels(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    """root -> child -> grandchild; the grandchild's bridge fails as GitLab's does."""
    admin, _, _ = await _setup(live_server, tmp_path, "x:\n  script: [x]\n")
    make_repo(tmp_path / "app", NESTED, {"nested.yml": NESTED})
    project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "app"), "name": "nest"})).json()
    base = f"/api/v4/projects/{project['id']}"
    try:
        pipeline_id = (await admin.post(f"{base}/pipeline")).json()["id"]
        reasons = []
        for _ in range(3):
            async def settled(pid: int = pipeline_id) -> dict[str, Any] | None:
                (found,) = (await admin.get(f"{base}/pipelines/{pid}/bridges")).json()
                return found if found["status"] in ("success", "failed") else None

            bridge = await _until(settled)
            reasons.append(bridge["failure_reason"])
            if bridge["downstream_pipeline"] is None:
                break
            pipeline_id = bridge["downstream_pipeline"]["id"]
        assert reasons == [None, None, "reached_max_descendant_pipelines_depth"]
    finally:
        await admin.aclose()


async def test_a_bridge_stranded_without_downstream_fails(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    """The server creating a downstream died halfway: the bridge does not run forever."""
    import sqlalchemy as sa

    from conveyor.server.db.tables import jobs

    admin, _, _ = await _setup(live_server, tmp_path, "x:\n  script: [x]\n")
    make_repo(tmp_path / "app", "t:\n  trigger: nowhere/none\n")
    project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "app"), "name": "app"})).json()
    base = f"/api/v4/projects/{project['id']}"
    services = live_server.app.state.services
    try:
        pipeline = (await admin.post(f"{base}/pipeline")).json()

        async def bridge() -> dict[str, Any]:
            (found,) = (await admin.get(f"{base}/pipelines/{pipeline['id']}/bridges")).json()
            return found

        await _until(lambda: _status(bridge, "failed"))  # the background task is done with it
        async with services.engine.begin() as conn:  # as a crashed server leaves it: running for an hour, no downstream
            await conn.execute(
                jobs.update().where(jobs.c.pipeline_id == pipeline["id"])
                .values(status="running", finished_at=None, failure_reason=None,
                        started_at=sa.func.now() - sa.text("interval '1 hour'"))
            )  # fmt: skip
        await services.bridges.tick()  # or the background task's pass: either ends it
        failed = await _until(lambda: _status(bridge, "failed"))
        assert failed["failure_reason"] == "downstream_pipeline_creation_failed"
    finally:
        await admin.aclose()


async def test_a_missing_needs_pipeline_job_fails_the_job_at_start(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    """needs:pipeline:job naming the job's own pipeline (GitLab drops it) or a job without
    artifacts: missing_dependency_failure, and the runner gets the next job instead."""
    yaml = (
        "t:\n  needs: [{pipeline: $CI_PIPELINE_ID, job: gen}]\n  script: [x]\n"
        "u:\n  needs: [{pipeline: $CI_PIPELINE_ID, job: gen, artifacts: false}]\n  script: [x]\n"
    )
    admin, token, project = await _setup(live_server, tmp_path, yaml)
    try:
        pipeline = (await admin.post(f"/api/v4/projects/{project['id']}/pipeline")).json()
        handed = await _request(live_server, token)
        assert handed.status_code == 201 and handed.json()["job_info"]["name"] == "u"
        assert (await _request(live_server, token)).status_code == 204
        jobs = {j["name"]: j for j in (await admin.get(f"/api/v4/projects/{project['id']}/pipelines/{pipeline['id']}/jobs")).json()}
        assert (jobs["t"]["status"], jobs["t"]["failure_reason"]) == ("failed", "missing_dependency_failure")
    finally:
        await admin.aclose()


async def test_failures_and_cancel_cascading_to_children_only(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    """A bridge to an unknown project fails with GitLab's reason; canceling the parent cancels
    its child pipeline, not a multi-project downstream."""
    admin, _, _ = await _setup(live_server, tmp_path, "x:\n  script: [x]\n")
    make_repo(tmp_path / "other", "waits:\n  script: [x]\n")
    other = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "other"), "name": "other"})).json()
    yaml = (
        "child:\n  trigger: {include: child.yml, strategy: depend}\n"
        "multi:\n  trigger: {project: other, strategy: depend}\n"
        "lost:\n  trigger: nowhere/none\n"
        "broken:\n  trigger: {include: broken.yml}\n"
    )
    make_repo(tmp_path / "app", yaml, {"child.yml": "waits:\n  script: [x]\n", "broken.yml": "j:\n  script: x\n  stage: nope\n"})
    project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "app"), "name": "app"})).json()
    base = f"/api/v4/projects/{project['id']}"
    try:
        parent = (await admin.post(f"{base}/pipeline")).json()

        async def settled() -> dict[str, dict[str, Any]] | None:
            found = {b["name"]: b for b in (await admin.get(f"{base}/pipelines/{parent['id']}/bridges")).json()}
            done = all(found[n]["status"] == "failed" for n in ("lost", "broken"))
            done = done and all(found[n]["downstream_pipeline"] for n in ("child", "multi"))
            return found if done else None

        bridges = await _until(settled)
        assert bridges["lost"]["failure_reason"] == "downstream_bridge_project_not_found"
        assert bridges["broken"]["failure_reason"] == "downstream_pipeline_creation_failed"
        assert bridges["broken"]["downstream_errors"] == [
            "broken.yml:3: j job: chosen stage nope does not exist; available stages are .pre, build, test, deploy, .post"
        ]
        assert bridges["child"]["status"] == bridges["multi"]["status"] == "running"
        child, multi = bridges["child"]["downstream_pipeline"], bridges["multi"]["downstream_pipeline"]
        assert (await admin.post(f"{base}/pipelines/{parent['id']}/cancel")).status_code in (200, 201)

        async def canceled() -> bool:
            return (await admin.get(f"{base}/pipelines/{child['id']}")).json()["status"] == "canceled"

        await _until(canceled)
        assert (await admin.get(f"/api/v4/projects/{other['id']}/pipelines/{multi['id']}")).json()["status"] != "canceled"
    finally:
        await admin.aclose()


async def test_mirror_follows_a_blocked_child_through_manual_and_running(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, token, _ = await _setup(live_server, tmp_path, "x:\n  script: [x]\n")
    child_yaml = "gate:\n  script: [x]\n  when: manual\n  allow_failure: false\n"
    make_repo(tmp_path / "app", "m:\n  trigger: {include: child.yml, strategy: mirror}\n", {"child.yml": child_yaml})
    project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "app"), "name": "app"})).json()
    base = f"/api/v4/projects/{project['id']}"
    try:
        parent = (await admin.post(f"{base}/pipeline")).json()

        async def bridge() -> dict[str, Any]:
            (found,) = (await admin.get(f"{base}/pipelines/{parent['id']}/bridges")).json()
            return found

        manual = await _until(lambda: _status(bridge, "manual"))
        child = manual["downstream_pipeline"]
        (gate,) = (await admin.get(f"{base}/pipelines/{child['id']}/jobs")).json()
        assert (await admin.post(f"{base}/jobs/{gate['id']}/play")).status_code == 200
        job = (await _request(live_server, token)).json()
        running = await _until(lambda: _status(bridge, "running"))
        assert running["finished_at"] is None  # mirroring "running" does not end the bridge
        await _finish(live_server, job, "success")
        done = await _until(lambda: _status(bridge, "success"))
        assert done["finished_at"] is not None
    finally:
        await admin.aclose()


DOTENV_PARENT = """
stages: [build, test]
build:
  stage: build
  script: [x]
  artifacts: {reports: {dotenv: build.env}}
child:
  stage: test
  variables: {V: "v$VERSION"}
  trigger:
    include: typed.yml
    inputs: {suffix: fast, count: 2}
"""
TYPED = """
spec:
  inputs:
    suffix: {}
    count: {type: number}
    tier: {default: dev}
---
"run-$[[ inputs.suffix ]]":
  script:
    - echo $[[ inputs.count ]]
  variables:
    TIER: $[[ inputs.tier ]]
"""


async def test_child_inputs_and_dotenv_in_bridge_variables(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    """trigger:inputs fill the child file's spec:inputs; the bridge's variables read the dotenv
    report of the job it depends on (GitLab's pattern for passing a build's version down)."""
    import gzip

    from tests.integration.server.test_artifacts import _upload

    admin, token, _ = await _setup(live_server, tmp_path, "x:\n  script: [x]\n")
    make_repo(tmp_path / "app", DOTENV_PARENT, {"typed.yml": TYPED})
    project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "app"), "name": "typed"})).json()
    base = f"/api/v4/projects/{project['id']}"
    try:
        parent = (await admin.post(f"{base}/pipeline")).json()
        build = (await _request(live_server, token)).json()
        async with httpx.AsyncClient(base_url=live_server.url) as client:
            await client.put(f"/api/v4/jobs/{build['id']}", json={"token": build["token"], "state": "running", "output": {}})
        uploaded = await _upload(live_server, build, [gzip.compress(b"VERSION=1.2.3\n")],
                                 query="artifact_format=gzip&artifact_type=dotenv", filename="build.env.gz")  # fmt: skip
        assert uploaded.status_code == 201, uploaded.text
        await _finish(live_server, build, "success")

        async def bridge() -> dict[str, Any]:
            (found,) = (await admin.get(f"{base}/pipelines/{parent['id']}/bridges")).json()
            return found

        await _until(lambda: _downstream(bridge))
        job = (await _request(live_server, token)).json()
        variables = {v["key"]: v["value"] for v in job["variables"]}
        assert job["job_info"]["name"] == "run-fast" and job["steps"][0]["script"] == ["echo 2"]
        assert (variables["V"], variables["TIER"]) == ("v1.2.3", "dev")
        assert "VERSION" not in variables  # dotenv goes down only with forward:pipeline_variables
    finally:
        await admin.aclose()


async def test_multi_project_trigger_inputs(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    """trigger:inputs fill the target project's .gitlab-ci.yml spec:inputs (17.11)."""
    admin, token, _ = await _setup(live_server, tmp_path, "x:\n  script: [x]\n")
    make_repo(tmp_path / "target", TYPED)
    await admin.post("/api/v4/projects", json={"source": str(tmp_path / "target"), "name": "target"})
    make_repo(tmp_path / "app", "go:\n  trigger:\n    project: target\n    inputs: {suffix: remote, count: 3, tier: prod}\n")
    project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "app"), "name": "caller"})).json()
    base = f"/api/v4/projects/{project['id']}"
    try:
        parent = (await admin.post(f"{base}/pipeline")).json()

        async def bridge() -> dict[str, Any]:
            (found,) = (await admin.get(f"{base}/pipelines/{parent['id']}/bridges")).json()
            return found

        downstream = await _until(lambda: _downstream(bridge))
        assert downstream["source"] == "pipeline"
        job = (await _request(live_server, token)).json()
        variables = {v["key"]: v["value"] for v in job["variables"]}
        assert (job["job_info"]["name"], job["steps"][0]["script"], variables["TIER"]) == ("run-remote", ["echo 3"], "prod")
    finally:
        await admin.aclose()
