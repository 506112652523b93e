"""``artifacts:reports:dotenv`` over real HTTP and PostgreSQL: the upload is parsed (GitLab's
errors refuse it and store nothing), the variables reach the payloads of the jobs that take the
job's artifacts, with GitLab's precedence, and not those that opt out."""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
import pytest

from tests.integration.server.test_artifacts import _finish, _rows, _running_jobs, _upload, _zip
from tests.integration.server.test_runner_api import _request, _setup

pytestmark = pytest.mark.integration

DOTENV = "artifact_format=gzip&artifact_type=dotenv"
YAML = """
stages: [build, test]
variables: {TOP: yaml}
a: {stage: build, script: [x], artifacts: {reports: {dotenv: a.env}}}
b: {stage: build, script: [x], artifacts: {reports: {dotenv: b.env}}}
c: {stage: test, script: [x], variables: {V: yaml, W: yaml}}
d: {stage: test, script: [x], needs: [{job: a, artifacts: false}, b]}
e: {stage: test, script: [x], dependencies: []}
"""


async def test_dotenv_variables_reach_the_jobs_after(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, ctx, (a, b) = await _running_jobs(live_server, tmp_path, 2, YAML)
    if a["job_info"]["name"] != "a":
        a, b = b, a
    good = await _upload(live_server, a, [gzip.compress(b"V=from a\nW=1\nTOP=dotenv\nEMPTY=\n")], query=DOTENV, filename="a.env.gz")
    assert good.status_code == 201, good.text
    # GitLab's refusals: nothing is stored, the job keeps no variables
    for body, message in (
        (b"B=1\n\nC=2\n", "Invalid Format"),
        (b"K E Y=1\n", "Validation failed: Key can contain only letters, digits and '_'."),
        ("".join(f"K{i}={i}\n" for i in range(21)).encode(), "Dotenv files cannot have more than 20 variables"),
    ):
        bad = await _upload(live_server, b, [gzip.compress(body)], query=DOTENV, filename="b.env.gz")
        assert bad.status_code == 400 and bad.json() == {"message": message}
    big = await _upload(live_server, b, [bytes(range(256)) * 20], query=DOTENV, filename="b.env.gz")
    assert big.status_code == 400 and big.json() == {"message": "Dotenv Artifact Too Big. Maximum Allowable Size: 5120"}
    assert await _rows(live_server, b["id"]) == []
    assert await live_server.services.artifacts.objects.size(f"artifacts/{b['id']}/dotenv/b.env.gz") is None
    assert (await _upload(live_server, b, [gzip.compress(b"W=2\nFROM_B=yes\n")], query=DOTENV, filename="b.env.gz")).status_code == 201
    # a bad report sent again under the same name leaves the stored one as it was
    assert (await _upload(live_server, b, [gzip.compress(b"\n")], query=DOTENV, filename="b.env.gz")).status_code == 400
    (stored,) = [r for r in await _rows(live_server, b["id"]) if r["file_type"] == "dotenv"]
    assert gzip.decompress(await live_server.services.artifacts.objects.get_bytes(stored["object_key"])) == b"W=2\nFROM_B=yes\n"
    assert (await _upload(live_server, b, [_zip(x=b"x")])).status_code == 201
    for job in (a, b):
        await _finish(live_server, job)

    later = {}
    for _ in range(3):
        response = await _request(live_server, ctx["runner_token"])
        assert response.status_code == 201, response.text
        body = response.json()
        later[body["job_info"]["name"]] = body
    found = {name: {v["key"]: v["value"] for v in body["variables"]} for name, body in later.items()}
    # c: both earlier jobs (b after a: its W wins); dotenv beats YAML (job and top-level)
    assert (found["c"]["V"], found["c"]["W"], found["c"]["FROM_B"], found["c"]["TOP"], found["c"]["EMPTY"]) == (
        "from a", "2", "yes", "dotenv", "")
    assert [d["name"] for d in later["c"]["dependencies"]] == ["b"]  # a has a report, no archive
    assert [v for v in later["c"]["variables"] if v["key"] == "V"][-1] == {"key": "V", "value": "from a", "public": True, "masked": False}
    # d: needs a without artifacts: none of a's variables; b's
    assert "V" not in found["d"] and found["d"]["FROM_B"] == "yes"
    # e: dependencies: [] takes nothing
    assert "FROM_B" not in found["e"] and "V" not in found["e"]
    await admin.aclose()


async def test_pipeline_variables_beat_dotenv(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    admin, runner_token, project = await _setup(live_server, tmp_path, YAML)
    run = await admin.post(f"/api/v4/projects/{project['id']}/pipeline", json={"variables": [{"key": "P", "value": "pipeline"}]})
    assert run.status_code == 201, run.text
    build = [(await _request(live_server, runner_token)).json() for _ in range(2)]
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        for job in build:
            ack = await client.put(f"/api/v4/jobs/{job['id']}", json={"token": job["token"], "state": "running", "output": {}})
            assert ack.status_code == 200
    for job in build:
        body = gzip.compress(b"P=dotenv\nQ=dotenv\n")
        assert (await _upload(live_server, job, [body], query=DOTENV, filename="x.env.gz")).status_code == 201
        await _finish(live_server, job)
    body = (await _request(live_server, runner_token)).json()
    found = {v["key"]: v["value"] for v in body["variables"]}
    assert (found["P"], found["Q"]) == ("pipeline", "dotenv")
    await admin.aclose()
