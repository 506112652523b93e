"""What a new server process does before it accepts, so its first pages do not: every template
compiled, every static file loaded, FastAPI's lazily built routers built (``app._warm``)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from conveyor.server import app as app_module
from conveyor.server import web
from conveyor.server.settings import ServerSettings
from conveyor.server.web import assets, render

pytestmark = pytest.mark.unit


def test_warm_compiles_every_template_and_loads_every_static_file() -> None:
    render._env.cache.clear()
    assets._assets.clear()
    web.warm()
    cached = {name for _, name in render._env.cache.keys()}
    assert cached == set(render._env.list_templates()) and "job.html" in cached
    assert set(assets._assets) == {p.name for p in assets.STATIC.iterdir() if p.suffix in assets.TYPES}
    assert "log-viewer.js" in assets._assets and "web.css" in assets._assets


def _routers(routes: list) -> list:
    found, pending = [], list(routes)
    while pending:
        route = pending.pop()
        if hasattr(route, "effective_candidates"):
            found.append(route)
            pending += route._effective_candidates  # what was built, without building more
        elif isinstance(getattr(route, "app", None), FastAPI):
            pending += route.app.router.routes
    return found


def test_warm_builds_every_router_before_the_first_request() -> None:
    application = app_module.create_app(ServerSettings(database_url="postgresql://x@127.0.0.1:1/x", redis_url="redis://127.0.0.1:1"))
    routers = _routers(application.router.routes)
    if not routers:
        pytest.skip("this FastAPI builds its routes when they are included")
    assert all(r._effective_candidates_version is None for r in routers)  # lazily, at a first request
    app_module._warm(application)
    routers = _routers(application.router.routes)
    assert len(routers) > 20
    assert all(r._effective_candidates_version is not None for r in routers)
    paths = {getattr(c, "path_format", "") for r in routers for c in r._effective_candidates}
    assert "/api/v4/jobs/request" in paths
