"""Every project route of the REST API declares the role it needs (``api/deps.py``'s
``Guest``..``Owner``), so part of GitLab's permission model holds by construction."""

from __future__ import annotations

import pytest
from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from conveyor.server import api
from conveyor.server.accounts.access import Role

pytestmark = pytest.mark.unit
# authenticated by something else than a user's role: a trigger token, a forge's webhook secret
PUBLIC = {
    ("POST", "/api/v4/projects/{project}/trigger/pipeline"),
    ("POST", "/api/v4/projects/{project}/ref/{ref}/trigger/pipeline"),
    ("POST", "/api/v4/projects/{project}/webhook"),
}
# none is left behind require_admin alone (the live tail and the sources settings got roles with accounts)
ADMIN_ONLY_FOR_NOW: set[tuple[str, str]] = set()
# the roles GitLab asks for, where this API adds or changes a route (rest-api.md, GitLab's policies)
EXPECTED = {
    ("GET", "/api/v4/projects/{project}/pipelines"): Role.GUEST,
    ("POST", "/api/v4/projects/{project}/pipeline"): Role.DEVELOPER,
    ("DELETE", "/api/v4/projects/{project}/pipelines/{pipeline_id}"): Role.OWNER,
    ("GET", "/api/v4/projects/{project}/jobs/{job_id}/trace"): Role.REPORTER,
    ("POST", "/api/v4/projects/{project}/jobs/{job_id}/retry"): Role.DEVELOPER,
    ("POST", "/api/v4/projects/{project}/jobs/{job_id}/play"): Role.DEVELOPER,
    ("POST", "/api/v4/projects/{project}/jobs/{job_id}/erase"): Role.MAINTAINER,
    ("GET", "/api/v4/projects/{project}/jobs/{job_id}/artifacts"): Role.REPORTER,
    ("PUT", "/api/v4/projects/{project}"): Role.MAINTAINER,
    ("DELETE", "/api/v4/projects/{project}"): Role.OWNER,
    ("GET", "/api/v4/projects/{project}/jobs/{job_id}/trace/stream"): Role.REPORTER,
    ("GET", "/api/v4/projects/{project}/jobs/{job_id}/trace/raw"): Role.REPORTER,
    ("PUT", "/api/v4/projects/{project}/sources"): Role.MAINTAINER,
    ("PUT", "/api/v4/projects/{project}/pipeline_schedules/{schedule_id}"): Role.MAINTAINER,
    ("POST", "/api/v4/projects/{project}/environments/{environment_id}/stop"): Role.DEVELOPER,
    # a project's runners: GitLab's admin_project (the runner's own owner is checked in runner_scopes)
    ("GET", "/api/v4/projects/{project}/runners"): Role.MAINTAINER,
    ("POST", "/api/v4/projects/{project}/runners"): Role.MAINTAINER,
    ("DELETE", "/api/v4/projects/{project}/runners/{runner_id}"): Role.MAINTAINER,
}


def _roles(dependant: Dependant) -> set[Role]:
    found = set()
    for dependency in dependant.dependencies:
        role = getattr(dependency.call, "role", None)
        if isinstance(role, Role):
            found.add(role)
        found |= _roles(dependency)
    return found


def _routes() -> list[tuple[str, str, APIRoute]]:
    routers = [v for name in api.__all__ for v in vars(getattr(api, name)).values() if isinstance(v, APIRouter)]
    return [(m, r.path.replace(":path}", "}"), r) for router in routers for r in router.routes
            if isinstance(r, APIRoute) for m in r.methods - {"HEAD"}]


def test_every_project_route_declares_a_role() -> None:
    missing = {(m, p) for m, p, r in _routes() if "{project}" in p and (m, p) not in PUBLIC and not _roles(r.dependant)}
    assert missing == ADMIN_ONLY_FOR_NOW


def test_the_roles_are_gitlab_s() -> None:
    declared = {(m, p): _roles(r.dependant) for m, p, r in _routes()}
    assert {key: declared[key] for key in EXPECTED} == {key: {role} for key, role in EXPECTED.items()}


def _samples(path: str) -> list[str]:
    """Paths a route template stands for: each parameter a number, a word, or (``:path``) two segments."""
    import re

    return [re.sub(r"\{[^}]+:path\}", value + "/b", re.sub(r"\{[^}:]+\}", value, path)) for value in ("1", "x")]


def test_the_hot_routers_go_first_without_taking_another_routers_path() -> None:
    """``app.HOT_ROUTERS`` (runner API, pipeline creation) are tried first (issue 24: a request tries
    the routes in order); that is safe only while no path matches both one of theirs and another
    route, whichever order they come in (a method mismatch included: the 405 would move)."""
    import os

    from fastapi import FastAPI

    from conveyor.server import app as server_app
    from conveyor.server.settings import ServerSettings

    os.environ.setdefault("CONVEYOR_DATABASE_URL", "postgresql://conveyor@127.0.0.1:1/unused")
    app: FastAPI = server_app.create_app(ServerSettings(bench_routes=True))
    contexts = [c for route in app.router.routes for c in getattr(route, "effective_route_contexts", lambda: [])()]
    hot = {id(route) for router in server_app.HOT_ROUTERS for route in router.routes}
    first = [c.original_route for c in contexts[: len(hot)]]
    assert {id(route) for route in first} == hot, "the hot routers are not the first ones"
    others = [c.original_route for c in contexts[len(hot):]] + [r for r in app.router.routes if hasattr(r, "path_regex")]
    assert len(others) > 100
    for mine in first:
        for other in others:
            for sample in _samples(mine.path):
                assert not other.path_regex.match(sample), (mine.path, other.path)
            for sample in _samples(getattr(other, "path", "")):
                assert not mine.path_regex.match(sample), (mine.path, other.path)
