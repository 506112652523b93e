"""``/api/v4/openapi.json``: it lists every route the server answers under ``/api/v4`` with its
parameters, and schemathesis, against a real server process over a real socket, finds no 5xx
and no answer that breaks the document (bounded: a few examples per operation)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import schemathesis
from cryptography.fernet import Fernet
from fastapi import APIRouter
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from conveyor.server import api
from tests.plugins.live import ROOT_TOKEN
from tests.plugins.repos import make_repo

pytestmark = pytest.mark.integration
EXAMPLES = 3  # per operation: ~100 operations, about 20 s on a quiet machine
# left out of the fuzzing, and why
NOT_FUZZED = {
    ("POST", "/api/v4/projects"): "imports from any git URL: fuzzed URLs would reach for the network",
    ("PUT", "/api/v4/projects/{project}"): "the same, through import_url",
    ("GET", "/api/v4/projects/{project}/jobs/{job_id}/trace/stream"): "a live tail stays open while its job runs",
}
KEEP_RANDOM = {("DELETE", "/api/v4/projects/{project}")}  # fuzzed, but never on the seeded project


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"CONVEYOR_SECRETS_KEY": Fernet.generate_key().decode()}  # variables, hooks and schedules store secrets


async def test_the_document_lists_every_route_with_its_parameters(live_server) -> None:  # noqa: ANN001
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        document = (await client.get("/api/v4/openapi.json")).json()
    served = {
        (method, route.path.replace(":path}", "}"))
        for router in _routers(bench=live_server.settings.bench_routes)
        for route in router.routes
        if isinstance(route, APIRoute) and route.path.startswith("/api/v4")
        for method in route.methods - {"HEAD"}
    }
    documented = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    assert served - documented == set()
    assert len(served) > 90
    pipelines = document["paths"]["/api/v4/projects/{project}/pipelines"]["get"]
    names = {p["name"] for p in pipelines["parameters"]}
    assert {"project", "status", "ref", "sha", "source", "updated_after", "order_by", "sort", "page", "per_page"} <= names
    assert set(pipelines["responses"]["200"]["headers"]) >= {"X-Total", "X-Next-Page", "Link"}
    create = document["paths"]["/api/v4/projects/{project}/pipeline"]["post"]
    assert set(create["requestBody"]["content"]["application/json"]["schema"]["properties"]) == {"ref", "variables"}
    jobs = document["paths"]["/api/v4/projects/{project}/pipelines/{pipeline_id}/jobs"]["get"]
    assert {"scope[]", "include_retried"} <= {p["name"] for p in jobs["parameters"]}


def _routers(*, bench: bool) -> list[APIRouter]:
    """Every router of ``server/api`` (the bench routes only when the server mounts them)."""
    found = []
    for name in api.__all__:
        module = getattr(api, name)
        if name == "bench" and not bench:
            continue
        found += [value for value in vars(module).values() if isinstance(value, APIRouter)]
    return found


def _seed(url: str, tmp_path: Path) -> None:
    """A project (id 1) with a pipeline, a runner and a variable for the fuzzer to find."""
    make_repo(tmp_path / "repo", "build:\n  script: [make]\n  artifacts:\n    paths: [out/]\nlater:\n  when: manual\n  script: [x]\n")
    with httpx.Client(base_url=url + "/api/v4", headers={"PRIVATE-TOKEN": ROOT_TOKEN}, timeout=30) as admin:
        assert admin.post("/projects", json={"import_url": str(tmp_path / "repo"), "name": "app"}).json()["id"] == 1
        assert admin.post("/projects/1/pipeline", json={"ref": "main"}).status_code == 201
        assert admin.post("/user/runners", json={"runner_type": "instance_type", "tag_list": ["linux"]}).status_code == 201
        assert admin.post("/projects/1/variables", json={"key": "A", "value": "1"}).status_code == 201


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_schema(server_process, tmp_path: Path) -> None:  # noqa: ANN001
    _seed(server_process.url, tmp_path)
    schema = schemathesis.openapi.from_url(f"{server_process.url}/api/v4/openapi.json")
    started = time.monotonic()
    operations = 0
    answers: Counter[int] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        if key in NOT_FUZZED:
            continue
        operations += 1

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def exercise(case) -> None:  # noqa: ANN001
            path = case.path_parameters or {}
            if "project" in path and key not in KEEP_RANDOM:
                path["project"] = "1"  # the seeded project: deeper than its 404
            for name, value in path.items():  # half the numeric ids aim at the seeded rows
                if name.endswith("_id") and isinstance(value, int) and value % 2 == 0:
                    path[name] = 1
            response = case.call(base_url=server_process.url, headers={"PRIVATE-TOKEN": ROOT_TOKEN}, timeout=30)
            answers[response.status_code] += 1
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

        exercise()
    assert operations > 90
    # it went past the 404s: answers from the seeded project's pipeline, jobs, variables, runners
    assert sum(n for status, n in answers.items() if status < 300) > 50, answers
    assert not [status for status in answers if status >= 500]
    assert time.monotonic() - started < 80, "the fuzzing outgrew its time budget"
