"""include: through the server: git at the pipeline's commit (local files, wildcards, another
project), rules:changes against the parent commit, errors with the included file's line, and
RemoteFetcher over real HTTP (size limit, timeout, status, local addresses)."""

from __future__ import annotations

import http.server
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.ciconfig import IncludeFailed
from conveyor.server.sources import RemoteFetcher
from tests.plugins.repos import make_repo

pytestmark = pytest.mark.integration

MAIN = """
include:
  - local: ci/build.yml
  - local: 'ci/more/*.yml'
  - project: shared
    file: templates/lint.yml
stages: [build, test]
docs:
  script: mkdocs
  rules:
    - changes: [docs/*]
src:
  script: make
  rules:
    - changes: [src/*]
"""
FILES = {
    "ci/build.yml": "build:\n  stage: build\n  script: make\n",
    "ci/more/unit.yml": "unit:\n  extends: .lint\n  script: pytest\n",
    "docs/index.md": "v1\n",
}


def commit(repo: Path, name: str, text: str) -> None:
    (repo / name).write_text(text)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@conveyor.invalid"]
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "--quiet", "-m", name], check=True)


async def test_includes_are_read_from_git_and_changes_from_the_parent_commit(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    make_repo(tmp_path / "shared", "x:\n  script: x\n", {"templates/lint.yml": ".lint:\n  stage: test\n  tags: []\n"})
    make_repo(tmp_path / "app", MAIN, FILES)
    commit(tmp_path / "app", "docs/index.md", "v2\n")
    async with live_server.admin() as admin:
        shared = await admin.post("/api/v4/projects", json={"source": str(tmp_path / "shared"), "name": "shared"})
        assert shared.status_code == 201, shared.text
        project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "app")})).json()
        created = await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
        assert created.status_code == 201, created.text
        jobs = (await admin.get(f"/api/v4/projects/{project['id']}/pipelines/{created.json()['id']}/jobs")).json()
    assert sorted(job["name"] for job in jobs) == ["build", "docs", "unit"]


async def test_errors_in_an_included_file_point_at_that_file(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    make_repo(tmp_path / "app", "include: ci/bad.yml\njob:\n  script: x\n", {"ci/bad.yml": "bad:\n  script: x\n  when: sometimes\n"})
    async with live_server.admin() as admin:
        project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "app")})).json()
        created = await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
    assert created.status_code == 400
    assert created.json() == {"message": {"base": [
        "ci/bad.yml:3: jobs:bad when should be one of: on_success, on_failure, always, manual, delayed"
    ]}}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/slow.yml":
            time.sleep(2)
        if self.path == "/missing.yml":
            self.send_response(404)
            self.end_headers()
            return
        body = b"x: " + b"y" * 5000 if self.path == "/big.yml" else b"remote:\n  script: x\n"
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout, size limit): what the test wants

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_remote_fetcher_reads_a_file(http_server: str) -> None:
    assert RemoteFetcher(allow_local=True).fetch(f"{http_server}/ok.yml") == "remote:\n  script: x\n"


@pytest.mark.parametrize(
    ("path", "fetcher", "reason"),
    [
        ("/missing.yml", RemoteFetcher(allow_local=True), "because of HTTP code `404` error!"),
        ("/big.yml", RemoteFetcher(allow_local=True, max_bytes=1000), "because it is larger than 1000 bytes!"),
        ("/slow.yml", RemoteFetcher(allow_local=True, timeout=0.5), "because of a timeout error!"),
        ("/ok.yml", RemoteFetcher(), "because its address is a local network address!"),
    ],
)
def test_remote_fetcher_refuses(http_server: str, path: str, fetcher: RemoteFetcher, reason: str) -> None:
    with pytest.raises(IncludeFailed) as caught:
        fetcher.fetch(f"{http_server}{path}")
    assert str(caught.value) == f"Remote file `{http_server}{path}` could not be fetched {reason}"


def test_remote_fetcher_reports_a_closed_port() -> None:
    with pytest.raises(IncludeFailed, match="because of a socket error!"):
        RemoteFetcher(allow_local=True).fetch("http://127.0.0.1:9/none.yml")


PARALLEL = """
variables:
  RAW: {value: "$HOME/x", expand: false}
tests:
  script: echo $CI_NODE_INDEX
  parallel: 2
  rules:
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
skipped:
  script: x
  rules:
    - if: $CI_COMMIT_TAG
"""


async def test_parallel_jobs_get_their_node_variables_in_the_payload(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    from tests.integration.server.test_runner_api import _request, _setup

    admin, token, project = await _setup(live_server, tmp_path, PARALLEL)
    try:
        created = await admin.post(f"/api/v4/projects/{project['id']}/pipeline")
        assert created.status_code == 201, created.text
        jobs = (await admin.get(f"/api/v4/projects/{project['id']}/pipelines/{created.json()['id']}/jobs")).json()
    finally:
        await admin.aclose()
    assert sorted(job["name"] for job in jobs) == ["tests 1/2", "tests 2/2"]
    response = await _request(live_server, token)
    assert response.status_code == 201, response.text
    variables = {v["key"]: v for v in response.json()["variables"]}
    assert variables["CI_NODE_TOTAL"]["value"] == "2"
    assert variables["CI_NODE_INDEX"]["value"] in ("1", "2")
    assert (variables["RAW"]["value"], variables["RAW"].get("raw")) == ("$HOME/x", True)


async def test_the_payload_carries_the_stored_pipelines_predefined_variables(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    """Commit facts read with git, the per-project iid, the runner and the start time reach the
    job, and rules saw the same pre-pipeline values (CI_COMMIT_TITLE) when the pipeline was made."""
    from tests.integration.server.test_runner_api import _request, _setup

    yaml = 'only-fix:\n  script: x\n  rules: [{if: $CI_COMMIT_TITLE == "test"}]\n'
    admin, token, project = await _setup(live_server, tmp_path, yaml)
    try:
        first = (await admin.post(f"/api/v4/projects/{project['id']}/pipeline")).json()
        second = (await admin.post(f"/api/v4/projects/{project['id']}/pipeline")).json()
    finally:
        await admin.aclose()
    found = []
    for _ in range(2):
        response = await _request(live_server, token)
        assert response.status_code == 201, response.text
        found.append({v["key"]: v["value"] for v in response.json()["variables"]})
    by_pipeline = {v["CI_PIPELINE_ID"]: v for v in found}
    assert by_pipeline[str(first["id"])]["CI_PIPELINE_IID"] == "1"
    assert by_pipeline[str(second["id"])]["CI_PIPELINE_IID"] == "2"
    variables = by_pipeline[str(first["id"])]
    assert variables["CI_COMMIT_MESSAGE"] == "test\n"
    assert variables["CI_COMMIT_AUTHOR"] == "t <t@conveyor.invalid>"
    assert variables["CI_COMMIT_TIMESTAMP"][:2] == "20" and variables["CI_JOB_STARTED_AT"].endswith("Z")
    assert variables["CI_COMMIT_BEFORE_SHA"] == "0" * 40  # the first commit
    assert variables["CI_RUNNER_DESCRIPTION"] == "t" and variables["CI_RUNNER_ID"].isdigit()
    assert variables["CI_JOB_URL"] == f"{variables['CI_PROJECT_URL']}/-/jobs/{variables['CI_JOB_ID']}"
    assert variables["CI_SERVER_URL"] == live_server.url.rstrip("/")


COMPONENT = """spec:
  inputs:
    stage: {default: test}
    flag: {type: boolean, default: false}
---
lint-$[[ inputs.stage ]]:
  stage: $[[ inputs.stage ]]
  variables:
    FLAG: $[[ inputs.flag ]]
  script: [lint]
"""


async def test_a_component_with_inputs_from_another_project_at_a_tag(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    """include: component: from a project this server knows, at a tag (the branch has moved on
    since), its spec:inputs given by the including file."""
    from tests.integration.server.test_runner_api import _setup

    library = tmp_path / "library"
    make_repo(library, "noop:\n  script: x\n", {"templates/lint.yml": COMPONENT})
    git = ["git", "-C", str(library), "-c", "user.name=t", "-c", "user.email=t@conveyor.invalid"]
    subprocess.run(git + ["tag", "1.0.0"], check=True)
    (library / "templates" / "lint.yml").write_text("changed-after-the-tag:\n  script: x\n")
    subprocess.run(git + ["commit", "--quiet", "-am", "later"], check=True)
    admin, _, _ = await _setup(live_server, tmp_path, "unused:\n  script: x\n")
    try:
        lib = (await admin.post("/api/v4/projects", json={"source": str(library)})).json()
        app_yaml = (
            "stages: [build, test]\n"
            f"include:\n  - component: $CI_SERVER_FQDN/{lib['name']}/lint@1.0.0\n"
            "    inputs: {stage: build, flag: true}\n"
        )
        make_repo(tmp_path / "app", app_yaml)
        app = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "app"), "name": "app"})).json()
        created = await admin.post(f"/api/v4/projects/{app['id']}/pipeline")
        assert created.status_code == 201, created.text
        jobs = (await admin.get(f"/api/v4/projects/{app['id']}/pipelines/{created.json()['id']}/jobs")).json()
        assert [(job["name"], job["stage"]) for job in jobs] == [("lint-build", "build")]
        bad = f"include:\n  - component: $CI_SERVER_FQDN/{lib['name']}/lint@9.9.9\n"
        make_repo(tmp_path / "bad", bad)
        bad_project = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "bad"), "name": "bad"})).json()
        refused = await admin.post(f"/api/v4/projects/{bad_project['id']}/pipeline")
        fqdn = live_server.url.split("://", 1)[1].rstrip("/")
        assert refused.status_code == 400
        assert f"Component '{fqdn}/{lib['name']}/lint@9.9.9' - content not found" in refused.text
    finally:
        await admin.aclose()


async def test_cache_key_files_digest_the_files_blobs_at_the_commit(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    import hashlib

    from tests.integration.server.test_runner_api import _request, _setup

    yaml = "j:\n  script: x\n  cache:\n    key: {files: [Gemfile.lock, missing.lock], prefix: gems}\n    paths: [vendor]\n"
    admin, token, project = await _setup(live_server, tmp_path, yaml)
    (tmp_path / "repo" / "Gemfile.lock").write_text("rake (13.0)\n")
    git = ["git", "-C", str(tmp_path / "repo"), "-c", "user.name=t", "-c", "user.email=t@conveyor.invalid"]
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "--quiet", "-m", "lock"], check=True)
    blob = subprocess.run(git + ["rev-parse", "HEAD:Gemfile.lock"], check=True, capture_output=True, text=True).stdout.strip()
    try:
        assert (await admin.post(f"/api/v4/projects/{project['id']}/pipeline")).status_code == 201
    finally:
        await admin.aclose()
    response = await _request(live_server, token)
    assert response.status_code == 201, response.text
    (cache,) = response.json()["cache"]
    assert cache["key"] == f"gems-{hashlib.sha1(blob.encode()).hexdigest()}-protected"  # main is protected


async def test_rules_changes_compare_to_a_branch(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    from tests.integration.server.test_runner_api import _setup

    yaml = (
        "docs:\n  script: x\n  rules: [{changes: {paths: [docs/*], compare_to: main}}]\n"
        "src:\n  script: x\n  rules: [{changes: {paths: [src/*], compare_to: main}}]\n"
        "lib:\n  script: x\n  rules: [{changes: {paths: [lib/*], compare_to: main}}]\n"
    )
    admin, _, project = await _setup(live_server, tmp_path, yaml)
    git = ["git", "-C", str(tmp_path / "repo"), "-c", "user.name=t", "-c", "user.email=t@conveyor.invalid"]
    subprocess.run(git + ["checkout", "--quiet", "-b", "feature"], check=True)
    (tmp_path / "repo" / "src").mkdir()
    (tmp_path / "repo" / "src" / "a.py").write_text("a\n")
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "--quiet", "-m", "src"], check=True)
    (tmp_path / "repo" / "docs").mkdir()
    (tmp_path / "repo" / "docs" / "b.md").write_text("b\n")
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "--quiet", "-m", "docs"], check=True)
    subprocess.run(git + ["checkout", "--quiet", "main"], check=True)
    (tmp_path / "repo" / "lib").mkdir()
    (tmp_path / "repo" / "lib" / "c.py").write_text("c\n")  # main moves on: not a change of feature
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "--quiet", "-m", "main"], check=True)
    try:
        created = await admin.post(f"/api/v4/projects/{project['id']}/pipeline", params={"ref": "feature"})
        assert created.status_code == 201, created.text
        jobs = (await admin.get(f"/api/v4/projects/{project['id']}/pipelines/{created.json()['id']}/jobs")).json()
    finally:
        await admin.aclose()
    assert [job["name"] for job in jobs] == ["docs", "src"]  # both commits since main, not main's own


async def test_rules_exists_in_another_project(live_server, tmp_path: Path) -> None:  # noqa: ANN001
    from tests.integration.server.test_runner_api import _setup

    admin, _, _ = await _setup(live_server, tmp_path, "x:\n  script: x\n")
    make_repo(tmp_path / "tools", "noop:\n  script: x\n", {"Dockerfile": "FROM scratch\n"})
    try:
        tools = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "tools"), "name": "tools"})).json()
        yaml = (
            f"docker:\n  script: x\n  rules: [{{exists: {{paths: [Dockerfile], project: {tools['name']}}}}}]\n"
            f"helm:\n  script: x\n  rules: [{{exists: {{paths: [Chart.yaml], project: {tools['name']}}}}}]\n"
        )
        make_repo(tmp_path / "app", yaml)
        app = (await admin.post("/api/v4/projects", json={"source": str(tmp_path / "app"), "name": "app"})).json()
        created = await admin.post(f"/api/v4/projects/{app['id']}/pipeline")
        assert created.status_code == 201, created.text
        jobs = (await admin.get(f"/api/v4/projects/{app['id']}/pipelines/{created.json()['id']}/jobs")).json()
    finally:
        await admin.aclose()
    assert [job["name"] for job in jobs] == ["docker"]
