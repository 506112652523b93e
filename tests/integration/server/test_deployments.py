"""environment: through a real server: deployments recorded with their job's status, the
environment's URL and state, CI_ENVIRONMENT_* in the payload."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.server.test_bridges import _finish
from tests.integration.server.test_runner_api import _request, _setup
from tests.plugins.repos import make_repo

pytestmark = pytest.mark.integration

PIPELINE = """
deploy:
  script: [x]
  environment:
    name: review/$CI_COMMIT_REF_NAME
    url: https://$CI_COMMIT_REF_SLUG.example.com
    on_stop: stop
stop:
  script: [x]
  when: manual
  environment: {name: review/$CI_COMMIT_REF_NAME, action: stop}
prepare:
  script: [x]
  environment: {name: production, action: prepare}
"""


async def test_deployments_and_environment_state(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, token, _ = await _setup(live_server, tmp_path, "x:\n  script: [x]\n")
    make_repo(tmp_path / "app", PIPELINE)
    project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "app"), "name": "app"})).json()
    base = f"/api/v4/projects/{project['id']}"
    try:
        assert (await admin.post(f"{base}/pipeline")).status_code == 201
        deployments = (await admin.get(f"{base}/deployments")).json()
        assert [(d["deployable"]["name"], d["status"]) for d in deployments] == [("stop", "blocked"), ("deploy", "created")]
        handed = {}
        for _ in range(2):
            job = (await _request(live_server, token)).json()
            handed[job["job_info"]["name"]] = job
        variables = {v["key"]: v["value"] for v in handed["deploy"]["variables"]}
        assert variables["CI_ENVIRONMENT_NAME"] == "review/main"
        assert variables["CI_ENVIRONMENT_URL"] == "https://main.example.com"
        assert variables["CI_ENVIRONMENT_ACTION"] == "start"
        assert variables["CI_ENVIRONMENT_TIER"] == "development"
        await _finish(live_server, handed["deploy"], "success")
        await _finish(live_server, handed["prepare"], "success")
        (review,) = (await admin.get(f"{base}/environments")).json()
        assert (review["name"], review["state"], review["external_url"]) == ("review/main", "available", "https://main.example.com")
        assert review["last_deployment"]["status"] == "blocked"  # the manual stop job waits
        stop_id = next(d["deployable"]["id"] for d in deployments if d["deployable"]["name"] == "stop")
        assert (await admin.post(f"{base}/jobs/{stop_id}/play")).status_code == 200
        stop = (await _request(live_server, token)).json()
        await _finish(live_server, stop, "success")
        (review,) = (await admin.get(f"{base}/environments")).json()
        assert review["state"] == "stopped"
        assert [d["status"] for d in (await admin.get(f"{base}/deployments")).json()] == ["success", "success"]
    finally:
        await admin.aclose()


async def test_pipeline_test_report_from_junit_artifacts(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    import gzip

    from tests.integration.server.test_artifacts import _upload

    admin, token, _ = await _setup(live_server, tmp_path, "x:\n  script: [x]\n")
    make_repo(tmp_path / "app", "unit:\n  script: [x]\n  artifacts: {reports: {junit: report.xml}}\n")
    project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "app"), "name": "app"})).json()
    base = f"/api/v4/projects/{project['id']}"
    try:
        pipeline = (await admin.post(f"{base}/pipeline")).json()
        job = (await _request(live_server, token)).json()
        xml = b'<testsuite><testcase classname="a" name="ok" time="0.5"/><testcase classname="a" name="no"><failure>x</failure></testcase></testsuite>'
        uploaded = await _upload(live_server, job, [gzip.compress(xml)], query="artifact_format=gzip&artifact_type=junit",
                                 filename="junit.xml.gz")  # fmt: skip
        assert uploaded.status_code == 201, uploaded.text
        await _finish(live_server, job, "failed")
        report = (await admin.get(f"{base}/pipelines/{pipeline['id']}/test_report")).json()
        assert (report["total_count"], report["success_count"], report["failed_count"]) == (2, 1, 1)
        (unit,) = report["test_suites"]
        assert unit["name"] == "unit" and [case["name"] for case in unit["test_cases"]] == ["ok", "no"]
        # the web UI's page of the same report, linked from the pipeline's page
        from tests.integration.server.test_web_pages import signed_in

        client = await signed_in(live_server.url)
        try:
            pipeline_page = await client.get(f"/-/projects/{project['id']}/pipelines/{pipeline['id']}")
            assert f'href="/-/projects/{project["id"]}/pipelines/{pipeline["id"]}/tests"' in pipeline_page.text
            page = await client.get(f"/-/projects/{project['id']}/pipelines/{pipeline['id']}/tests")
            assert page.status_code == 200, page.text
            assert "2 tests · 1 passed · 1 failed · 0 errors · 0 skipped" in page.text
            assert "<h2>failed: no</h2>" in page.text and "<pre>x</pre>" in page.text
            assert (await client.get(f"/-/projects/{project['id']}/pipelines/999999/tests")).status_code == 404
        finally:
            await client.aclose()
    finally:
        await admin.aclose()


DYNAMIC = """
deploy:
  script: [x]
  artifacts: {reports: {dotenv: deploy.env}}
  environment: {name: review/$CI_COMMIT_REF_SLUG, url: $DYNAMIC_ENVIRONMENT_URL}
"""


async def test_dynamic_environment_url_from_the_deploying_jobs_dotenv(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    """GitLab's dynamic environment URLs: the job writes the URL to its dotenv report."""
    import gzip

    import httpx

    from tests.integration.server.test_artifacts import _upload

    admin, token, _ = await _setup(live_server, tmp_path, "x:\n  script: [x]\n")
    make_repo(tmp_path / "app", DYNAMIC)
    project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "app"), "name": "dyn"})).json()
    base = f"/api/v4/projects/{project['id']}"
    try:
        assert (await admin.post(f"{base}/pipeline")).status_code == 201
        job = (await _request(live_server, token)).json()
        async with httpx.AsyncClient(base_url=live_server.url) as client:
            await client.put(f"/api/v4/jobs/{job['id']}", json={"token": job["token"], "state": "running", "output": {}})
        body = gzip.compress(b"DYNAMIC_ENVIRONMENT_URL=https://review-42.example.com\n")
        assert (await _upload(live_server, job, [body], query="artifact_format=gzip&artifact_type=dotenv", filename="d.env.gz")).status_code == 201
        await _finish(live_server, job, "success")
        (review,) = (await admin.get(f"{base}/environments")).json()
        assert (review["name"], review["external_url"]) == ("review/main", "https://review-42.example.com")
    finally:
        await admin.aclose()


STOPPING = """
deploy:
  script: [x]
  environment: {name: review/$CI_COMMIT_REF_SLUG, on_stop: stop, auto_stop_in: 1 hour}
stop:
  script: [x]
  when: manual
  environment: {name: review/$CI_COMMIT_REF_SLUG, action: stop}
docs:
  script: [x]
  environment: {name: docs}
"""


async def test_stop_and_auto_stop(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    """POST .../stop without on_stop stops at once; auto_stop_in gives auto_stop_at, and once it
    passed the auto-stop pass plays the on_stop job, whose success stops the environment."""
    from datetime import UTC, datetime, timedelta

    admin, token, _ = await _setup(live_server, tmp_path, "x:\n  script: [x]\n")
    make_repo(tmp_path / "app", STOPPING)
    project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "app"), "name": "stopping"})).json()
    base = f"/api/v4/projects/{project['id']}"
    try:
        assert (await admin.post(f"{base}/pipeline")).status_code == 201
        for _ in range(2):
            await _finish(live_server, (await _request(live_server, token)).json(), "success")
        environments = {e["name"]: e for e in (await admin.get(f"{base}/environments")).json()}
        review, docs = environments["review/main"], environments["docs"]
        due = datetime.fromisoformat(review["auto_stop_at"].replace("Z", "+00:00"))
        assert timedelta(minutes=59) < due - datetime.now(UTC) <= timedelta(hours=1)
        assert docs["auto_stop_at"] is None and docs["state"] == "available"
        stopped = await admin.post(f"{base}/environments/{docs['id']}/stop")
        assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"
        assert (await admin.post(f"{base}/environments/999999/stop")).status_code == 404
        assert await live_server.services.deployments.auto_stop() == 0  # not due yet
        assert await live_server.services.deployments.auto_stop(now=due + timedelta(seconds=1)) == 1
        stop = (await _request(live_server, token)).json()
        assert stop["job_info"]["name"] == "stop"
        await _finish(live_server, stop, "success")
        environments = {e["name"]: e for e in (await admin.get(f"{base}/environments")).json()}
        assert environments["review/main"]["state"] == "stopped" and environments["review/main"]["auto_stop_at"] is None
    finally:
        await admin.aclose()
