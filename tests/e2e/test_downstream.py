"""trigger: end to end (real server and runner processes, shell executor, git repositories):
a dynamic child pipeline whose config an earlier job generated (and whose dotenv report reaches
the child, the bridge and the later stage), and a multi-project trigger with
strategy: depend failing its parent when the downstream fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Admin
from tests.plugins.repos import make_repo

pytestmark = pytest.mark.e2e

DYNAMIC = """
stages: [build, test, deploy]
gen:
  stage: build
  script:
    - |
      cat > child.yml <<'END'
      child-job:
        needs: [{pipeline: $PARENT_ID, job: gen}]
        script:
          - echo "from child $PARENT_ID $CI_PIPELINE_SOURCE $CI_COMMIT_SHA"
          - echo "artifact of the parent's job:" && head -1 child.yml
          - echo "dotenv [$BUILD_VERSION] [$TAG]"
      END
    - echo "BUILD_VERSION=1.2.3" > build.env
  artifacts:
    paths: [child.yml]
    reports: {dotenv: build.env}
run-child:
  stage: test
  variables:
    PARENT_ID: $CI_PIPELINE_ID
    TAG: v$BUILD_VERSION
  trigger:
    include:
      - artifact: child.yml
        job: gen
    strategy: depend
after:
  stage: deploy
  script: ['echo "after [$BUILD_VERSION]"']
"""


def _bridges(admin: Admin, project: int, pipeline: int) -> dict[str, dict[str, Any]]:
    response = admin.http.get(f"/projects/{project}/pipelines/{pipeline}/bridges")
    assert response.status_code == 200, response.text
    return {bridge["name"]: bridge for bridge in response.json()}


def test_dynamic_child_pipeline_from_an_artifact(server_process, admin, start_runner, tmp_path: Path) -> None:  # noqa: ANN001
    sha = make_repo(tmp_path / "repo", DYNAMIC)
    project = admin.project(str(tmp_path / "repo"))
    start_runner(server_process.url, admin.runner_token())
    parent = admin.pipeline(project["id"])
    final = admin.wait(project["id"], parent["id"])
    bridge = _bridges(admin, project["id"], parent["id"])["run-child"]
    if final["status"] != "success" and bridge["downstream_pipeline"]:
        child_jobs = admin.jobs(project["id"], bridge["downstream_pipeline"]["id"])
        pytest.fail(str([admin.trace(project["id"], j["id"]) for j in child_jobs.values()]))
    assert final["status"] == "success", bridge
    jobs = admin.jobs(project["id"], parent["id"])
    assert {name: job["status"] for name, job in jobs.items()} == {"gen": "success", "after": "success"}
    bridge = _bridges(admin, project["id"], parent["id"])["run-child"]
    assert bridge["status"] == "success"
    child = bridge["downstream_pipeline"]
    assert (child["source"], child["status"], child["sha"], child["project_id"]) == (
        "parent_pipeline", "success", sha, project["id"],
    )
    child_jobs = admin.jobs(project["id"], child["id"])
    assert child_jobs["child-job"]["status"] == "success"
    log = admin.trace(project["id"], child_jobs["child-job"]["id"]).decode()
    assert f"from child {parent['id']} parent_pipeline {sha}" in log
    assert "artifact of the parent's job:\nchild-job:" in log  # needs:pipeline:job downloaded it
    # the runner uploaded gen's dotenv report: the child job has it through needs:pipeline:job,
    # the bridge expanded its own variable with it, the later stage has it too
    assert "dotenv [1.2.3] [v1.2.3]" in log
    assert "after [1.2.3]" in admin.trace(project["id"], jobs["after"]["id"]).decode()
    # the later stage waited for the child (strategy: depend)
    assert jobs["after"]["started_at"] >= bridge["finished_at"]


DOWNSTREAM = """
broken:
  coverage: '/Coverage: \\d+\\.\\d+%/'
  script:
    - "echo 'Coverage: 87.5%'"
    - exit 4
"""
UPSTREAM = """
deploy:
  variables: {TARGET: prod}
  trigger:
    project: {name}
    strategy: depend
"""


def test_multi_project_trigger_with_depend_fails_the_parent(server_process, admin, start_runner, tmp_path: Path) -> None:  # noqa: ANN001
    make_repo(tmp_path / "downstream", DOWNSTREAM)
    downstream = admin.project(str(tmp_path / "downstream"))
    make_repo(tmp_path / "upstream", UPSTREAM.replace("{name}", downstream["name"]))
    upstream = admin.project(str(tmp_path / "upstream"))
    start_runner(server_process.url, admin.runner_token())
    parent = admin.pipeline(upstream["id"])
    assert admin.wait(upstream["id"], parent["id"])["status"] == "failed"
    bridge = _bridges(admin, upstream["id"], parent["id"])["deploy"]
    assert bridge["status"] == "failed"
    child = bridge["downstream_pipeline"]
    assert (child["source"], child["status"], child["project_id"]) == ("pipeline", "failed", downstream["id"])
    assert admin.jobs(upstream["id"], parent["id"]) == {}  # bridges are not jobs
    broken = admin.jobs(downstream["id"], child["id"])["broken"]
    assert broken["status"] == "failed" and broken["exit_code"] == 4
    assert broken["coverage"] == 87.5  # coverage: regex over the finished job's log
