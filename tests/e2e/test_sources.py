"""Pipelines that start themselves, end to end with a real server and runner: trigger tokens,
push webhooks from GitLab, GitHub and Gitea (bad secrets, redeliveries, tags, deletions),
polling, schedules across two server processes and after downtime, and webhooks out. Every
endpoint is driven by python-gitlab where python-gitlab has it."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import gitlab
import httpx
import pytest
from cryptography.fernet import Fernet

from tests.plugins.live import ROOT_TOKEN, ServerProcess
from tests.plugins.repos import make_repo
from tests.plugins.services import free_port

pytestmark = pytest.mark.e2e

SECRET = "hook-secret-0123"
MASKED = "Sup3rS3cret/Valu3="
PIPELINE = """
show:
  script:
    - echo "source=$CI_PIPELINE_SOURCE triggered=$CI_PIPELINE_TRIGGERED before=$CI_COMMIT_BEFORE_SHA"
    - echo "ref=$CI_COMMIT_REF_NAME tag=${CI_COMMIT_TAG:-none} branch=${CI_COMMIT_BRANCH:-none} var=${DEPLOY_TARGET:-none} masked=$MASKED_VAR"
    - if [ -n "$TRIGGER_PAYLOAD" ]; then echo "payload=$(cat "$TRIGGER_PAYLOAD")"; fi
chain:
  rules:
    - if: $CHAIN == "yes"
  script:
    - >-
      python3 -c 'import json, os, urllib.request as u;
      data = json.dumps({"token": os.environ["CI_JOB_TOKEN"], "ref": "main", "variables": {"DEPLOY_TARGET": "chained"}}).encode();
      r = u.urlopen(u.Request(os.environ["CI_API_V4_URL"] + "/projects/" + os.environ["CI_PROJECT_ID"] + "/trigger/pipeline", data, {"Content-Type": "application/json"}));
      print("chained", json.load(r)["source"])'
docs:
  rules:
    - changes: [docs/**]
  script: [echo docs changed]
"""


def _git(repo: Path, *args: str) -> str:
    base = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@conveyor.invalid"]
    return subprocess.run(base + list(args), check=True, capture_output=True, text=True).stdout.strip()


def _commit(repo: Path, path: str, text: str, message: str = "change") -> str:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "--quiet", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


class Receiver:
    """A webhook receiver: answers 500 to the first request, 200 afterwards; keeps every body."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.failed_once = False
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if not owner.failed_once:
                    owner.failed_once = True
                    self.send_response(500)
                else:
                    owner.requests.append((dict(self.headers), json.loads(body)))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _wait_for(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise TimeoutError("condition not met")


@pytest.fixture
def receiver() -> Any:
    found = Receiver()
    yield found
    found.server.shutdown()
    found.server.server_close()


@pytest.fixture
def server_env() -> dict[str, str]:
    return {
        "CONVEYOR_SECRETS_KEY": Fernet.generate_key().decode(),
        "CONVEYOR_POLL_PASS_INTERVAL": "1",
        "CONVEYOR_SCHEDULE_PASS_INTERVAL": "1",
        "CONVEYOR_HOOK_RETRY_BASE_DELAY": "1",
        "CONVEYOR_HOOK_ALLOW_LOCAL": "true",  # the receiver listens on 127.0.0.1
    }


def test_pipelines_start_themselves(  # noqa: PLR0915
    server_process, admin, start_runner, postgres, database_url, receiver, tmp_path: Path,  # noqa: ANN001
) -> None:
    repo = tmp_path / "repo"
    first = make_repo(repo, PIPELINE)
    project_id = admin.project(str(repo))["id"]
    gl = gitlab.Gitlab(server_process.url, private_token=ROOT_TOKEN)
    project = gl.projects.get(project_id, lazy=True)
    project.variables.create({"key": "MASKED_VAR", "value": MASKED, "masked": True})
    hook = project.hooks.create({"url": receiver.url, "token": "out-secret", "pipeline_events": True, "job_events": True})
    assert hook.pipeline_events and hook.job_events and "token" not in hook.attributes
    start_runner(server_process.url, admin.runner_token())
    url = server_process.url + "/api/v4"

    def finished(pipeline_id: int) -> dict[str, str]:
        assert admin.wait(project_id, pipeline_id)["status"] == "success"
        jobs = admin.jobs(project_id, pipeline_id)
        return {name: admin.trace(project_id, job["id"]).decode() for name, job in jobs.items()}

    def pipeline_count() -> int:
        return len(admin.http.get(f"/projects/{project_id}/pipelines").json())

    # --- trigger tokens: python-gitlab's CRUD, trigger_pipeline with variables, a form-encoded call
    trigger = project.triggers.create({"description": "deploy"})
    token = trigger.token  # shown whole once: it is stored hashed, later reads show 4 characters
    assert token.startswith("glptt-")
    assert [t.token for t in project.triggers.list(get_all=True)] == [token[:4]]
    trigger.description = "deploy it"
    trigger.save()
    assert project.triggers.get(trigger.id).description == "deploy it"
    triggered = project.trigger_pipeline("main", token, variables={"DEPLOY_TARGET": "staging", "CHAIN": "yes"})
    assert triggered.source == "trigger"
    logs = finished(triggered.id)
    assert "source=trigger triggered=true before=" + "0" * 40 in logs["show"]
    assert "var=staging" in logs["show"] and "masked=[MASKED]" in logs["show"]
    assert "docs" in logs  # rules:changes without a push is true, as GitLab
    assert "chained pipeline" in logs["chain"]  # a job's CI_JOB_TOKEN triggers: source "pipeline"
    chained = _wait_for(lambda: [p for p in admin.http.get(f"/projects/{project_id}/pipelines").json()
                                 if p["source"] == "pipeline"])
    assert "source=pipeline triggered=true" in finished(chained[0]["id"])["show"]
    form = httpx.post(f"{url}/projects/{project_id}/trigger/pipeline",
                      data={"token": token, "ref": "main", "variables[DEPLOY_TARGET]": "prod"})
    assert form.status_code == 201, form.text
    assert "var=prod" in finished(form.json()["id"])["show"]
    as_forge_hook = httpx.post(f"{url}/projects/{project_id}/ref/main/trigger/pipeline?token={token}",
                               json={"object_kind": "push", "hello": "forge"})
    assert as_forge_hook.status_code == 201, as_forge_hook.text
    forge_log = finished(as_forge_hook.json()["id"])["show"]
    assert 'payload={"object_kind":"push","hello":"forge"}' in forge_log  # the body as sent
    before = pipeline_count()
    bad = httpx.post(f"{url}/projects/{project_id}/trigger/pipeline", json={"token": "glptt-wrong", "ref": "main"})
    assert (bad.status_code, bad.json()) == (404, {"message": "404 Not Found"})
    looped = httpx.post(f"{url}/projects/{project_id}/trigger/pipeline", json={"token": token, "ref": "main"},
                        headers={"X-Gitlab-Event": "Pipeline Hook"})
    assert looped.status_code == 403
    not_map = httpx.post(f"{url}/projects/{project_id}/trigger/pipeline",
                         json={"token": token, "ref": "main", "variables": {"A": 1}})
    assert not_map.json() == {"message": "variables needs to be a map of key-valued strings"}
    assert pipeline_count() == before
    project.triggers.delete(trigger.id)

    # --- push webhooks in
    admin.http.put(f"/projects/{project_id}/sources", json={"webhook_secret": SECRET}).raise_for_status()
    second = _commit(repo, "docs/index.md", "docs")

    def github(payload: dict[str, Any], delivery: str, signature: str | None = "good") -> httpx.Response:
        body = json.dumps(payload).encode()
        headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "Content-Type": "application/json"}
        if signature is not None:
            digest = hmac.new((SECRET if signature == "good" else "wrong").encode(), body, hashlib.sha256).hexdigest()
            headers["X-Hub-Signature-256"] = "sha256=" + digest
        return httpx.post(f"{url}/projects/{project_id}/webhook", content=body, headers=headers)

    push = {"ref": "refs/heads/main", "before": first, "after": second, "head_commit": {"message": "change"}}
    before = pipeline_count()
    assert github(push, "d-1", signature="bad").status_code == 401
    assert github(push, "d-1", signature=None).status_code == 401
    assert pipeline_count() == before
    created = github(push, "d-1")
    assert created.status_code == 201, created.text
    pushed_id = created.json()["pipeline_id"]
    again = github(push, "d-1")  # a redelivery
    assert (again.json()["status"], again.json()["pipeline_id"]) == ("duplicate", pushed_id)
    gitlab_same = httpx.post(  # the same ref+sha from another forge's delivery
        f"{url}/projects/{project_id}/webhook", json={"ref": "refs/heads/main", "before": first, "after": second,
                                                     "checkout_sha": second},
        headers={"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET, "X-Gitlab-Event-UUID": "g-1"})
    assert gitlab_same.json()["status"] == "duplicate"
    assert pipeline_count() == before + 1
    logs = finished(pushed_id)
    # GitLab sets CI_PIPELINE_TRIGGERED only on triggered pipelines (Ci::Build#predefined_variables)
    assert f"source=push triggered= before={first}" in logs["show"] and "docs changed" in logs["docs"]

    third = _commit(repo, "src/app.txt", "code")
    gitlab_push = httpx.post(
        f"{url}/projects/{project_id}/webhook",
        json={"object_kind": "push", "ref": "refs/heads/main", "before": second, "after": third, "checkout_sha": third,
              "commits": [{"id": third, "message": "code"}]},
        headers={"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET, "X-Gitlab-Event-UUID": "g-2"})
    assert gitlab_push.status_code == 201, gitlab_push.text
    logs = finished(gitlab_push.json()["pipeline_id"])
    assert f"before={second}" in logs["show"] and "docs" not in logs  # changes over second..third only
    wrong_gitlab = httpx.post(f"{url}/projects/{project_id}/webhook", json={"ref": "refs/heads/main"},
                              headers={"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "nope"})
    assert wrong_gitlab.status_code == 401

    fourth = _commit(repo, "docs/more.md", "more")
    gitea_body = json.dumps({"ref": "refs/heads/main", "before": third, "after": fourth}).encode()
    gitea = httpx.post(f"{url}/projects/{project_id}/webhook", content=gitea_body, headers={
        "X-Gitea-Event": "push", "X-GitHub-Event": "push", "X-Gitea-Delivery": "t-1", "Content-Type": "application/json",
        "X-Gitea-Signature": hmac.new(SECRET.encode(), gitea_body, hashlib.sha256).hexdigest()})
    assert gitea.status_code == 201, gitea.text
    assert "docs changed" in finished(gitea.json()["pipeline_id"])["docs"]

    _git(repo, "tag", "v1.0")
    tag_push = httpx.post(
        f"{url}/projects/{project_id}/webhook",
        json={"object_kind": "tag_push", "ref": "refs/tags/v1.0", "before": "0" * 40, "after": fourth, "checkout_sha": fourth},
        headers={"X-Gitlab-Event": "Tag Push Hook", "X-Gitlab-Token": SECRET, "X-Gitlab-Event-UUID": "g-3"})
    assert tag_push.status_code == 201, tag_push.text
    tag_log = finished(tag_push.json()["pipeline_id"])["show"]
    assert "ref=v1.0 tag=v1.0 branch=none" in tag_log
    before = pipeline_count()
    deletion = github({"ref": "refs/heads/gone", "before": fourth, "after": "0" * 40, "deleted": True}, "d-2")
    assert (deletion.status_code, deletion.json()["status"]) == (200, "ignored")
    ping = httpx.post(f"{url}/projects/{project_id}/webhook", content=b"{}", headers={
        "X-GitHub-Event": "ping", "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), b"{}", hashlib.sha256).hexdigest()})
    assert ping.json()["status"] == "ignored"
    assert pipeline_count() == before

    # --- polling: the first poll records the heads, a new commit afterwards starts a pipeline
    admin.http.put(f"/projects/{project_id}/sources", json={"poll_interval": 1}).raise_for_status()
    time.sleep(2.5)
    assert pipeline_count() == before
    fifth = _commit(repo, "src/polled.txt", "polled")
    polled = _wait_for(lambda: [p for p in admin.http.get(f"/projects/{project_id}/pipelines").json() if p["sha"] == fifth])
    assert len(polled) == 1 and polled[0]["source"] == "push"
    assert f"before={fourth}" in finished(polled[0]["id"])["show"]
    admin.http.put(f"/projects/{project_id}/sources", json={"poll_interval": 0}).raise_for_status()

    # --- schedules: python-gitlab's CRUD and play; firing once across two servers and after downtime
    schedule = project.pipelineschedules.create({"description": "nightly", "ref": "main", "cron": "0 3 * * *",
                                                 "cron_timezone": "Europe/Paris"})
    assert schedule.ref == "refs/heads/main" and schedule.next_run_at.endswith("Z")
    schedule.variables.create({"key": "DEPLOY_TARGET", "value": "nightly"})
    schedule.variables.update("DEPLOY_TARGET", {"value": "nightly-2"})
    schedule.variables.create({"key": "TEMP", "value": "x"})
    schedule.variables.delete("TEMP")
    schedule.description = "nightly build"
    schedule.save()
    schedule = project.pipelineschedules.get(schedule.id)
    assert schedule.description == "nightly build" and schedule.attributes["variables"] == [
        {"key": "DEPLOY_TARGET", "value": "nightly-2", "variable_type": "env_var"}]
    schedule_id, next_run_at = schedule.id, schedule.next_run_at
    schedule.take_ownership()
    schedule.play()  # python-gitlab replaces the object's attributes with play's {"message": ...}
    schedule = project.pipelineschedules.get(schedule_id)
    played = _wait_for(lambda: schedule.pipelines.list(get_all=True))
    logs = finished(played[0].id)
    assert "source=schedule" in logs["show"] and "var=nightly-2" in logs["show"]
    with pytest.raises(gitlab.GitlabCreateError) as bad_cron:
        project.pipelineschedules.create({"description": "x", "ref": "main", "cron": "not cron"})
    assert bad_cron.value.error_message == {"cron": ["is invalid syntax"]}

    database = database_url.rsplit("/", 1)[1]
    second_server = ServerProcess(server_process.env, free_port(), tmp_path / "server-2.log")
    second_server.start()
    try:
        postgres.psql(f"UPDATE pipeline_schedules SET next_run_at = now() - interval '1 second' WHERE id = {schedule_id}", database)
        _wait_for(lambda: len(schedule.pipelines.list(get_all=True)) == 2)
        time.sleep(2.5)  # both servers made passes since: still one pipeline for that tick
        assert len(schedule.pipelines.list(get_all=True)) == 2
    finally:
        second_server.stop()
    server_process.stop()
    # down for three days of a daily schedule: one pipeline after the restart, not three
    postgres.psql(f"UPDATE pipeline_schedules SET next_run_at = now() - interval '3 days' WHERE id = {schedule_id}", database)
    server_process.start()
    _wait_for(lambda: len(schedule.pipelines.list(get_all=True)) == 3)
    time.sleep(2.5)
    assert len(schedule.pipelines.list(get_all=True)) == 3
    assert project.pipelineschedules.get(schedule_id).next_run_at == next_run_at  # the next 03:00 in Paris again
    project.pipelineschedules.delete(schedule_id)

    # --- webhooks out: the first delivery failed (500) and was retried; every event arrived
    events = _wait_for(lambda: [b for _, b in receiver.requests if b["object_kind"] == "pipeline"
                                and b["object_attributes"]["id"] == pushed_id
                                and b["object_attributes"]["status"] == "success"])
    headers, body = next((h, b) for h, b in receiver.requests if b is events[0])
    assert headers["X-Gitlab-Event"] == "Pipeline Hook" and headers["X-Gitlab-Token"] == "out-secret"
    assert body["object_attributes"]["source"] == "push" and body["object_attributes"]["before_sha"] == first
    jobs_seen = {(b["build_name"], b["build_status"]) for _, b in receiver.requests if b["object_kind"] == "build"}
    assert {("show", "running"), ("show", "success")} <= jobs_seen
    assert all(MASKED not in json.dumps(b) for _, b in receiver.requests)
    deliveries = admin.http.get(f"/projects/{project_id}/hooks/{hook.id}/deliveries").json()
    assert deliveries and all(d["response_status"] in (200, None) for d in deliveries)
    retried = postgres.psql("SELECT count(*) FROM hook_deliveries WHERE attempts >= 2 AND response_status = 200", database)
    assert receiver.failed_once and int(retried) >= 1
    hook.job_events = False
    hook.save()
    assert not project.hooks.get(hook.id).job_events
    hook.test("pipeline_events")
    assert len(project.hooks.list(get_all=True)) == 1
    with pytest.raises(gitlab.GitlabCreateError) as bad_url:
        project.hooks.create({"url": "ftp://nowhere"})
    assert (bad_url.value.response_code, bad_url.value.error_message) == (422, "Invalid url given")
    project.hooks.delete(hook.id)
