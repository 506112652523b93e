"""Registry credentials resolved as gitlab-runner does: job DOCKER_AUTH_CONFIG, then the runner's
own config, then the payload's ``credentials``; the first source naming the image's registry wins."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from conveyor.runner.executors.docker import auth

pytestmark = pytest.mark.unit


def _config(**hosts: tuple[str, str]) -> str:
    return json.dumps({"auths": {h: {"auth": base64.b64encode(f"{u}:{p}".encode()).decode()} for h, (u, p) in hosts.items()}})


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("alpine:3", "docker.io"),
        ("library/alpine", "docker.io"),
        ("docker.io/library/alpine:3", "docker.io"),
        ("index.docker.io/library/alpine", "docker.io"),
        ("registry.gitlab.com/group/app:1", "registry.gitlab.com"),
        ("gitlab.example.com:5050/g/p@sha256:abc", "gitlab.example.com:5050"),
        ("localhost/conveyor-busybox:test", "localhost"),
        ("127.0.0.1:5000/x", "127.0.0.1:5000"),
        ("group/app", "docker.io"),
    ],
)
def test_registry_of_an_image(image: str, registry: str) -> None:
    assert auth.registry_of(image) == registry


def test_sources_in_gitlab_runner_order(tmp_path: Path) -> None:
    payload = [{"type": "registry", "url": "registry.example.com", "username": "gitlab-ci-token", "password": "job-token"},
               {"type": "other", "url": "x.example.com", "username": "u", "password": "p"}]  # fmt: skip
    job = {"DOCKER_AUTH_CONFIG": _config(**{"registry.example.com": ("from-job", "1")})}
    runner = auth.runner_config({"DOCKER_AUTH_CONFIG": _config(**{"https://index.docker.io/v1/": ("hub", "2")})})
    chosen = auth.resolve("registry.example.com/a:1", job, payload, runner)
    assert (chosen.username, chosen.password, chosen.source) == ("from-job", "1", "$DOCKER_AUTH_CONFIG")
    hub = auth.resolve("alpine", job, payload, runner)
    assert (hub.username, hub.server) == ("hub", "docker.io")
    fallback = auth.resolve("registry.example.com/a:1", {}, payload, runner)
    assert (fallback.username, fallback.password, fallback.source) == ("gitlab-ci-token", "job-token", "job payload (GitLab Registry)")
    assert auth.resolve("other.example.com/a", job, payload, runner) is None
    assert auth.resolve("x.example.com/a", {}, payload, {}) is None  # not a registry credential


def test_runner_config_file_and_entry_forms(tmp_path: Path) -> None:
    (tmp_path / ".docker").mkdir()
    path = tmp_path / ".docker" / "config.json"
    path.write_text(json.dumps({"auths": {
        "reg.example.com:5000": {"username": "plain", "password": "pw"},
        "bad.example.com": {"auth": "***not base64***"},
        "helper.example.com": {},
    }, "credsStore": "desktop"}))  # fmt: skip
    found = auth.runner_config({}, home=tmp_path)
    assert set(found) == {"reg.example.com:5000"} and found["reg.example.com:5000"].source == str(path)
    assert auth.runner_config({}, home=tmp_path / "none") == {}
    assert auth.from_config("not json", "x") == {} and auth.from_config("[1]", "x") == {}


def test_header_is_base64url_json_of_docker_auth_config() -> None:
    creds = auth.Credentials("u", "p?>", "reg.example.com", "x")
    decoded = json.loads(base64.urlsafe_b64decode(creds.header()))
    assert decoded == {"username": "u", "password": "p?>", "serveraddress": "reg.example.com"}

