"""Accounts and roles over real HTTP, driven by the real python-gitlab: users, personal access
tokens (scopes, expiry, revocation), members with GitLab's access levels, and what each role may
do with the existing endpoints. python-gitlab is synchronous: it runs in a thread while the
server answers in this event loop."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gitlab
from cryptography.fernet import Fernet
import httpx
import pytest

from tests.integration.server.test_runner_api import _request
from tests.plugins.live import ROOT_TOKEN
from tests.plugins.repos import make_repo

pytestmark = pytest.mark.integration

ONE_JOB = "build:\n  script: [echo hi]\n"
SECRETS_KEY = Fernet.generate_key().decode()


@pytest.fixture
def server_settings(server_settings):  # noqa: ANN001, ANN201
    return server_settings.with_overrides(secrets_key=SECRETS_KEY)


def _raises(error: type[Exception], call: Callable[[], Any]) -> Exception:
    with pytest.raises(error) as caught:
        call()
    return caught.value


async def _project_with_job(live, tmp_path: Path) -> tuple[dict, dict]:  # noqa: ANN001
    """A project in root's namespace whose one job a runner has taken: (project, job)."""
    make_repo(tmp_path / "repo", ONE_JOB)
    async with live.admin() as admin:
        runner = (await admin.post("/api/v4/user/runners", json={"description": "t"})).json()
        project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "repo"), "name": "app"})).json()
        assert (await admin.post(f"/api/v4/projects/{project['id']}/pipeline")).status_code == 201
    job = (await _request(live, runner["token"])).json()
    return project, job


def _people(url: str, project_id: int, job_id: int) -> None:
    """The whole python-gitlab session (sync): root creates users, tokens, members; each person
    then meets the role rules."""
    root = gitlab.Gitlab(url, private_token=ROOT_TOKEN)
    root.auth()
    assert root.user.username == "root" and root.user.is_admin is True
    assert root.version() == ("17.11.0", "conveyor-0.1.0")
    own_token = root.personal_access_tokens.get("self")  # the initial root token is root's PAT
    assert (own_token.name, own_token.user_id, own_token.scopes, own_token.active) == ("root", 1, ["api"], True)
    assert own_token.last_used_at is not None

    tokens: dict[str, str] = {}
    users: dict[str, Any] = {}
    project = root.projects.get(project_id)
    assert project.path_with_namespace == "root/app"
    assert root.projects.get("root/app").id == project_id  # python-gitlab sends root%2Fapp
    for name, level in (("rita", 20), ("dave", 30), ("nobody", None)):
        user = root.users.create({"email": f"{name}@example.com", "username": name, "name": name.title()})
        users[name] = user
        tokens[name] = user.personal_access_tokens.create({"name": "cli", "scopes": ["api"]}).token
        assert tokens[name].startswith("glpat-")
        if level is not None:
            assert project.members.create({"user_id": user.id, "access_level": level}).access_level == level
    duplicate = _raises(gitlab.GitlabCreateError, lambda: root.users.create({"email": "rita@example.com", "username": "x", "name": "X"}))
    assert duplicate.response_code == 409 and duplicate.error_message == "Email has already been taken"
    assert {m.username: m.access_level for m in project.members.list()} == {"rita": 20, "dave": 30}
    assert [u.username for u in root.users.list(username="dave")] == ["dave"]
    ops = root.groups.create({"name": "Ops", "path": "ops"})
    ops.members.create({"user_id": users["nobody"].id, "access_level": 10})
    assert [(m.username, m.access_level) for m in root.groups.get("ops").members.list()] == [("root", 50), ("nobody", 10)]
    assert {n.path for n in root.namespaces.list()} >= {"root", "rita", "dave", "nobody", "ops"}
    assert {m.username for m in project.members_all.list()} == {"rita", "dave"}
    users["rita"].name = "Rita Reporter"
    users["rita"].save()  # PUT /users/:id with the changed field only
    assert root.users.get(users["rita"].id).name == "Rita Reporter"

    as_ = {name: gitlab.Gitlab(url, private_token=token) for name, token in tokens.items()}
    as_["rita"].auth()
    assert as_["rita"].user.username == "rita" and as_["rita"].user.web_url == f"{url}/rita"

    # a reporter reads a job's log, but may not retry it
    rita_job = as_["rita"].projects.get(project_id, lazy=True).jobs.get(job_id, lazy=True)
    assert rita_job.trace() == b""
    assert _raises(gitlab.GitlabJobRetryError, rita_job.retry).response_code == 403
    assert _raises(gitlab.GitlabCreateError, lambda: as_["rita"].projects.get(project_id, lazy=True).pipelines.create({"ref": "main"})).response_code == 403

    # a developer runs pipelines but cannot touch variables, protected or not
    project.variables.create({"key": "DEPLOY_KEY", "value": "s3cr3t-value", "protected": True, "masked": True})
    dave_project = as_["dave"].projects.get(project_id)
    started = dave_project.pipelines.create({"ref": "main"})
    assert started.status in ("pending", "created")
    # the pipeline records who started it: the API's user, the username filter, GITLAB_USER_*
    assert (started.user["username"], started.user["name"]) == ("dave", "Dave")
    assert [p.id for p in project.pipelines.list(username="dave", get_all=True)] == [started.id]
    assert {v.key: v.value for v in project.pipelines.get(started.id).variables.list(get_all=True)} == {}
    denied = _raises(gitlab.GitlabUpdateError, lambda: dave_project.variables.update("DEPLOY_KEY", {"value": "changed-value"}))
    assert denied.response_code == 403
    assert _raises(gitlab.GitlabGetError, lambda: dave_project.variables.get("DEPLOY_KEY")).response_code == 403
    assert project.variables.get("DEPLOY_KEY").value == "s3cr3t-value"

    # not a member: the project does not exist for you
    hidden = _raises(gitlab.GitlabGetError, lambda: as_["nobody"].projects.get(project_id))
    assert hidden.response_code == 404 and hidden.error_message == "404 Project Not Found"
    assert as_["nobody"].projects.list() == []

    # a read_api token reads but cannot write
    reader = users["dave"].personal_access_tokens.create({"name": "ro", "scopes": ["read_api"]}).token
    read_only = gitlab.Gitlab(url, private_token=reader)
    assert read_only.projects.get(project_id).id == project_id
    scoped = _raises(gitlab.GitlabCreateError, lambda: read_only.projects.get(project_id, lazy=True).pipelines.create({"ref": "main"}))
    assert scoped.response_code == 403 and "insufficient_scope" in str(scoped.error_message)

    # an administrator's sudo-scoped token acts as another user (Sudo header)
    sudo = gitlab.Gitlab(url, private_token=root.users.get(1).personal_access_tokens.create({"name": "s", "scopes": ["api", "sudo"]}).token)
    assert [p.id for p in sudo.projects.list(sudo="nobody")] == []
    assert sudo.http_get("/user", sudo="rita")["username"] == "rita"
    unscoped = _raises(gitlab.GitlabHttpError, lambda: root.http_get("/user", sudo="rita"))
    assert (unscoped.response_code, unscoped.error_message) == (403, "insufficient_scope")
    not_admin = _raises(gitlab.GitlabHttpError, lambda: as_["dave"].http_get("/user", sudo="rita"))
    assert (not_admin.response_code, not_admin.error_message) == (403, "403 Forbidden - Must be admin to use sudo")
    assert _raises(gitlab.GitlabHttpError, lambda: sudo.http_get("/user", sudo="nobody-at-all")).error_message == (
        "404 User with ID or username 'nobody-at-all' Not Found"
    )

    # revoked, expired, blocked: 401 (python-gitlab's GitlabAuthenticationError)
    own = as_["rita"].personal_access_tokens.get("self")
    root.personal_access_tokens.delete(own.id)
    assert _raises(gitlab.GitlabAuthenticationError, as_["rita"].auth).response_code == 401
    today = datetime.now(UTC).date().isoformat()
    expired = users["dave"].personal_access_tokens.create({"name": "old", "scopes": ["api"], "expires_at": today}).token
    assert _raises(gitlab.GitlabAuthenticationError, gitlab.Gitlab(url, private_token=expired).auth).response_code == 401
    users["dave"].block()
    assert _raises(gitlab.GitlabAuthenticationError, as_["dave"].auth).response_code == 401
    users["dave"].unblock()
    as_["dave"].auth()
    assert as_["dave"].user.username == "dave"
    # a token revokes itself
    as_["nobody"].personal_access_tokens.delete("self")
    assert _raises(gitlab.GitlabAuthenticationError, as_["nobody"].auth).response_code == 401


async def test_python_gitlab_users_tokens_members_and_roles(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    project, job = await _project_with_job(live_server, tmp_path)
    await asyncio.to_thread(_people, live_server.url, project["id"], job["id"])


async def test_token_errors_in_gitlabs_bodies(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    async with live_server.admin() as admin, httpx.AsyncClient(base_url=live_server.url) as anyone:
        user = (await admin.post("/api/v4/users", data={"email": "e@x.org", "username": "eve", "name": "Eve"})).json()
        made = await admin.post(f"/api/v4/users/{user['id']}/personal_access_tokens", data={"name": "r", "scopes[]": "read_api"})
        assert made.status_code == 201 and made.json()["scopes"] == ["read_api"]
        token = made.json()["token"]
        assert (await anyone.get("/api/v4/user")).json() == {"message": "401 Unauthorized"}
        assert (await anyone.get("/api/v4/user", headers={"Authorization": f"Bearer {token}"})).json()["username"] == "eve"
        write = await anyone.post("/api/v4/groups", json={"name": "g", "path": "g"}, headers={"PRIVATE-TOKEN": token})
        assert write.status_code == 403
        assert write.json() == {
            "error": "insufficient_scope",
            "error_description": "The request requires higher privileges than provided by the access token.",
            "scope": "api",
        }
        await admin.delete(f"/api/v4/personal_access_tokens/{made.json()['id']}")
        revoked = await anyone.get("/api/v4/user", headers={"PRIVATE-TOKEN": token})
        assert revoked.status_code == 401
        assert revoked.json() == {"error": "invalid_token", "error_description": "Token was revoked. You have to re-authorize from the user."}
        second = (await admin.post(f"/api/v4/users/{user['id']}/personal_access_tokens", json={"name": "cli", "scopes": "api,read_user"})).json()
        rotated = await anyone.post(f"/api/v4/personal_access_tokens/{second['id']}/rotate", headers={"PRIVATE-TOKEN": second["token"]})
        assert rotated.status_code == 200 and rotated.json()["scopes"] == ["api", "read_user"]
        assert rotated.json()["token"] != second["token"] and rotated.json()["expires_at"] is not None
        assert (await anyone.get("/api/v4/user", headers={"PRIVATE-TOKEN": second["token"]})).status_code == 401
        mine = await anyone.get("/api/v4/personal_access_tokens", headers={"PRIVATE-TOKEN": rotated.json()["token"]})
        assert [(t["name"], t["active"], t["revoked"]) for t in mine.json()] == [("r", False, True), ("cli", False, True), ("cli", True, False)]
        others = await anyone.get("/api/v4/personal_access_tokens?user_id=1", headers={"PRIVATE-TOKEN": rotated.json()["token"]})
        assert others.status_code == 401
        bad_scope = await admin.post(f"/api/v4/users/{user['id']}/personal_access_tokens", json={"name": "x", "scopes": ["root"]})
        assert (bad_scope.status_code, bad_scope.json()) == (400, {"error": "scopes does not have a valid value"})
        assert (await admin.post("/api/v4/users", json={"name": "N"})).json() == {"error": "email is missing, username is missing"}
        assert (await admin.get("/api/v4/no/such/route")).json() == {"error": "404 Not Found"}


async def test_group_members_reach_the_groups_projects(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    make_repo(tmp_path / "repo", ONE_JOB)
    async with live_server.admin() as admin, httpx.AsyncClient(base_url=live_server.url) as http:
        user = (await admin.post("/api/v4/users", json={"email": "m@x.org", "username": "mia", "name": "Mia"})).json()
        token = (await admin.post(f"/api/v4/users/{user['id']}/personal_access_tokens", json={"name": "t", "scopes": "api"})).json()["token"]
        mia = {"PRIVATE-TOKEN": token}
        group = (await http.post("/api/v4/groups", json={"name": "Team", "path": "team"}, headers=mia)).json()
        assert group["full_path"] == "team"
        created = await http.post("/api/v4/projects", json={"source": str(tmp_path / "repo"), "name": "svc", "namespace_id": group["id"]}, headers=mia)
        assert created.status_code == 201 and created.json()["path_with_namespace"] == "team/svc"
        other = (await admin.post("/api/v4/users", json={"email": "o@x.org", "username": "olga", "name": "Olga"})).json()
        added = await http.post(f"/api/v4/groups/{group['id']}/members", data={"user_id": other["id"], "access_level": "40"}, headers=mia)
        assert added.status_code == 201 and added.json()["access_level"] == 40
        inherited = (await http.get("/api/v4/projects/team%2Fsvc/members/all", headers=mia)).json()
        assert {m["username"]: m["access_level"] for m in inherited} == {"mia": 50, "olga": 40}
        assert (await http.get("/api/v4/projects/team%2Fsvc/members", headers=mia)).json() == []
        olga_token = (await admin.post(f"/api/v4/users/{other['id']}/personal_access_tokens", json={"name": "t", "scopes": "api"})).json()["token"]
        olga = {"PRIVATE-TOKEN": olga_token}
        trigger = await http.post("/api/v4/projects/team%2Fsvc/triggers", json={"description": "ci"}, headers=olga)
        assert trigger.status_code == 201  # a maintainer through the group
        owner = await http.post(f"/api/v4/groups/{group['id']}/members", json={"user_id": 1, "access_level": 50}, headers=olga)
        assert owner.status_code == 403  # only an owner makes owners
        assert [n["path"] for n in (await http.get("/api/v4/namespaces", headers=olga)).json()] == ["team", "olga"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conveyor", *args], capture_output=True, text=True, timeout=60, check=False)


async def test_conveyor_users_cli(live_server) -> None:  # noqa: ANN001
    """``conveyor users``: create, token create, block/unblock, token revoke, list."""
    server = ("--url", live_server.url, "--token", ROOT_TOKEN)
    made = await asyncio.to_thread(_cli, "users", "create", "carl", "--email", "carl@example.com", *server)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["username"] == "carl"
    issued = await asyncio.to_thread(_cli, "users", "token", "create", "carl", "--name", "ci", "--scope", "read_api", *server)
    token = json.loads(issued.stdout)
    assert token["scopes"] == ["read_api"] and token["token"].startswith("glpat-")
    async with httpx.AsyncClient(base_url=live_server.url, headers={"PRIVATE-TOKEN": token["token"]}) as carl:
        assert (await carl.get("/api/v4/user")).json()["username"] == "carl"
        assert (await asyncio.to_thread(_cli, "users", "block", "carl", *server)).returncode == 0
        assert (await carl.get("/api/v4/user")).status_code == 401
        assert (await asyncio.to_thread(_cli, "users", "unblock", "carl", *server)).returncode == 0
        assert (await carl.get("/api/v4/user")).status_code == 200
        assert (await asyncio.to_thread(_cli, "users", "token", "revoke", str(token["id"]), *server)).returncode == 0
        assert (await carl.get("/api/v4/user")).status_code == 401
    listed = await asyncio.to_thread(_cli, "users", "list", *server)
    assert [u["username"] for u in json.loads(listed.stdout)] == ["root", "carl"]
    denied = await asyncio.to_thread(_cli, "users", "create", "x", "--email", "carl@example.com", *server)
    assert denied.returncode == 1 and "Email has already been taken" in denied.stderr


async def test_who_may_create_runners(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    """``POST /user/runners``: the create_runner (or api) scope, and an administrator for
    instance runners, a maintainer of the project for project runners."""
    make_repo(tmp_path / "repo", ONE_JOB)
    async with live_server.admin() as admin, httpx.AsyncClient(base_url=live_server.url) as http:
        user = (await admin.post("/api/v4/users", json={"email": "r@x.org", "username": "ron", "name": "Ron"})).json()

        async def token(*scopes: str) -> dict[str, str]:
            made = await admin.post(f"/api/v4/users/{user['id']}/personal_access_tokens", json={"name": "t", "scopes": list(scopes)})
            return {"PRIVATE-TOKEN": made.json()["token"]}

        root_runner = await admin.post(f"/api/v4/users/1/personal_access_tokens", json={"name": "runners", "scopes": ["create_runner"]})
        made = await http.post("/api/v4/user/runners", data={"runner_type": "instance_type", "description": "by scope"},
                               headers={"PRIVATE-TOKEN": root_runner.json()["token"]})  # fmt: skip
        assert made.status_code == 201 and made.json()["token"].startswith("glrt-")
        instance = await http.post("/api/v4/user/runners", json={"runner_type": "instance_type"}, headers=await token("create_runner"))
        assert (instance.status_code, instance.json()) == (403, {"message": "403 Forbidden"})
        read_user = await http.post("/api/v4/user/runners", json={"runner_type": "instance_type"}, headers=await token("read_user"))
        assert read_user.status_code == 403 and read_user.json()["error"] == "insufficient_scope"
        project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "repo"), "name": "r"})).json()
        ron = await token("create_runner")
        hidden = await http.post("/api/v4/user/runners", json={"runner_type": "project_type", "project_id": project["id"]}, headers=ron)
        assert (hidden.status_code, hidden.json()) == (404, {"message": "404 Project Not Found"})
        await admin.post(f"/api/v4/projects/{project['id']}/members", json={"user_id": user["id"], "access_level": 30})
        low = await http.post("/api/v4/user/runners", json={"runner_type": "project_type", "project_id": project["id"]}, headers=ron)
        assert low.status_code == 403
        missing = await http.post("/api/v4/user/runners", json={"runner_type": "project_type"}, headers=ron)
        assert (missing.status_code, missing.json()) == (400, {"error": "project_id is missing"})
        await admin.put(f"/api/v4/projects/{project['id']}/members/{user['id']}", data={"access_level": "40"})
        allowed = await http.post("/api/v4/user/runners", json={"runner_type": "project_type", "project_id": project["id"]}, headers=ron)
        assert allowed.status_code == 201 and allowed.json()["token"].startswith("glrt-t3_")
        assert allowed.json()["token_expires_at"] is None and set(allowed.json()) == {"id", "token", "token_expires_at"}
