"""CI/CD variables end to end: python-gitlab drives the variables API, a real runner runs a job
that prints a masked variable whole, split across two PATCHes and percent-encoded; the secret
never reaches the stored log, a job or pipeline response, or an error."""

from __future__ import annotations

import json
from pathlib import Path

import gitlab
import pytest
from cryptography.fernet import Fernet
from urllib.parse import quote, quote_plus

from tests.plugins.live import ROOT_TOKEN, ServerProcess
from tests.plugins.repos import make_repo
from tests.e2e.test_cli import conveyor

pytestmark = pytest.mark.e2e

SECRET = "s3cr3t/Va+lue=@x:y~Z9"
PIPELINE = """
variables:
  FROM_YAML: yaml
  OVERRIDDEN: yaml
show:
  environment: production
  script:
    - echo "whole $SECRET end"
    - printf 'split %s' "${SECRET:0:7}"; sleep 2.5; printf '%s end\\n' "${SECRET:7}"
    - python3 -c 'import os, urllib.parse as u; s = os.environ["SECRET"]; print("enc", u.quote(s, safe=""), u.quote_plus(s))'
    - echo "values $FROM_YAML $OVERRIDDEN $SCOPED $INSTANCE_ONLY $(cat "$AS_FILE")"
"""


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"CONVEYOR_SECRETS_KEY": Fernet.generate_key().decode()}


def test_variables_api_and_masking_end_to_end(server_process, admin, start_runner, tmp_path: Path) -> None:  # noqa: ANN001
    make_repo(tmp_path / "repo", PIPELINE)
    project_id = admin.project(str(tmp_path / "repo"))["id"]
    gl = gitlab.Gitlab(server_process.url, private_token=ROOT_TOKEN)
    project = gl.projects.get(project_id, lazy=True)

    created = project.variables.create({"key": "SECRET", "value": SECRET, "masked": True})
    assert (created.key, created.value, created.masked, created.environment_scope) == ("SECRET", SECRET, True, "*")
    project.variables.create({"key": "OVERRIDDEN", "value": "project"})
    project.variables.create({"key": "SCOPED", "value": "star"})
    project.variables.create({"key": "SCOPED", "value": "prod", "environment_scope": "production"})
    project.variables.create({"key": "AS_FILE", "value": "file-content", "variable_type": "file"})
    hidden = project.variables.create({"key": "HIDDEN", "value": "hidden-value-1", "masked_and_hidden": True})
    assert hidden.value is None and hidden.hidden and hidden.masked
    assert project.variables.get("HIDDEN").value is None
    assert {v.key for v in project.variables.list(get_all=True)} >= {"SECRET", "SCOPED", "HIDDEN"}

    with pytest.raises(gitlab.GitlabGetError) as ambiguous:
        project.variables.get("SCOPED")
    assert ambiguous.value.response_code == 409 and "filter[environment_scope]" in ambiguous.value.error_message
    assert project.variables.get("SCOPED", filter={"environment_scope": "production"}).value == "prod"
    with pytest.raises(gitlab.GitlabCreateError) as bad:
        project.variables.create({"key": "WEAK", "value": "short", "masked": True})
    assert bad.value.response_code == 400 and bad.value.error_message == {"value": ["is invalid"]}
    with pytest.raises(gitlab.GitlabCreateError) as taken:
        project.variables.create({"key": "SECRET", "value": SECRET + "x", "masked": True})
    assert taken.value.error_message == {"key": ["(SECRET) has already been taken"]}
    assert SECRET not in str(taken.value.error_message)
    with pytest.raises(gitlab.GitlabUpdateError) as fixed:
        project.variables.update("HIDDEN", {"masked": False})
    assert "masked and hidden" in str(fixed.value.error_message)

    temporary = project.variables.create({"key": "TEMP", "value": "one"})
    temporary.value = "two"
    temporary.save()
    assert project.variables.get("TEMP").value == "two"
    project.variables.delete("TEMP")
    with pytest.raises(gitlab.GitlabGetError) as gone:
        project.variables.get("TEMP")
    assert gone.value.response_code == 404 and gone.value.error_message == "404 Variable Not Found"

    gl.variables.create({"key": "INSTANCE_ONLY", "value": "instance"})
    gl.variables.create({"key": "OVERRIDDEN", "value": "instance"})
    instance = gl.variables.get("INSTANCE_ONLY")
    instance.description = "set by the test"
    instance.save()
    assert gl.variables.get("INSTANCE_ONLY").description == "set by the test"
    assert {v.key for v in gl.variables.list(get_all=True)} == {"INSTANCE_ONLY", "OVERRIDDEN"}
    gl.variables.create({"key": "INSTANCE_TEMP", "value": "x"})
    gl.variables.delete("INSTANCE_TEMP")

    start_runner(server_process.url, admin.runner_token())
    pipeline = admin.pipeline(project_id)
    assert admin.wait(project_id, pipeline["id"])["status"] == "success"
    job = admin.jobs(project_id, pipeline["id"])["show"]
    log = admin.trace(project_id, job["id"]).decode()

    assert "whole [MASKED] end" in log and "split [MASKED] end" in log
    assert "enc [MASKED] [MASKED]" in log
    for form in (SECRET, quote(SECRET, safe=""), quote_plus(SECRET), SECRET[:7] + SECRET[7:]):
        assert form not in log
    assert "values yaml project prod instance file-content" in log  # project > instance > YAML
    responses = [
        admin.http.get(f"/projects/{project_id}/pipelines/{pipeline['id']}").text,
        admin.http.get(f"/projects/{project_id}/pipelines/{pipeline['id']}/jobs").text,
        admin.http.get(f"/projects/{project_id}/pipelines").text,
    ]
    assert all(SECRET not in text and quote(SECRET, safe="") not in text for text in responses)

    # the CLI: conveyor variables / schedules / hooks, project add --poll
    cli = ("--url", server_process.url, "--token", ROOT_TOKEN)
    assert conveyor("variables", "set", "CLI_VAR", "one", "--project", str(project_id), *cli).returncode == 0
    assert conveyor("variables", "set", "CLI_VAR", "two", "--project", str(project_id), *cli).returncode == 0
    listed = json.loads(conveyor("variables", "list", "--project", str(project_id), *cli).stdout)
    assert {"key": "CLI_VAR", "value": "two"}.items() <= next(v for v in listed if v["key"] == "CLI_VAR").items()
    weak = conveyor("variables", "set", "WEAK", "short", "--masked", *cli)
    assert weak.returncode == 1 and "is invalid" in weak.stderr
    assert conveyor("variables", "delete", "CLI_VAR", "--project", str(project_id), *cli).returncode == 0
    made = conveyor("schedules", "create", str(project_id), "--cron", "0 4 * * 1", "--description", "weekly",
                    "--timezone", "Europe/Berlin", "-v", "A=1", *cli)
    assert made.returncode == 0, made.stderr
    schedule_id = json.loads(made.stdout.split("\n}\n")[0] + "}")["id"]
    assert json.loads(conveyor("schedules", "list", str(project_id), *cli).stdout)[0]["cron_timezone"] == "Europe/Berlin"
    assert conveyor("schedules", "delete", str(project_id), str(schedule_id), *cli).returncode == 0
    blocked = conveyor("hooks", "add", str(project_id), "http://127.0.0.1:9/hook", *cli)
    assert blocked.returncode == 1 and "Requests to the local network are not allowed" in blocked.stderr
    hook = conveyor("hooks", "add", str(project_id), "http://hooks.example.invalid/hook", "--secret", "s", *cli)
    assert hook.returncode == 0 and "token" not in json.loads(hook.stdout)
    assert conveyor("hooks", "deliveries", str(project_id), str(json.loads(hook.stdout)["id"]), *cli).returncode == 0
    make_repo(tmp_path / "polled", PIPELINE)
    polled = conveyor("project", "add", str(tmp_path / "polled"), "--poll", "60", "--webhook-secret", "w", *cli)
    assert json.loads(polled.stdout)["sources"] == {"webhook_secret_set": True, "poll_interval": 60}

    # a restart without the key refuses to start, saying why, since encrypted variables exist
    server_process.stop()
    keyless = ServerProcess({k: v for k, v in server_process.env.items() if k != "CONVEYOR_SECRETS_KEY"},
                            server_process.port, tmp_path / "keyless.log")
    with pytest.raises(RuntimeError, match="CONVEYOR_SECRETS_KEY is not set, but the database holds"):
        keyless.start()
    assert keyless.proc is not None and keyless.proc.wait(20) != 0
    keyless.stop()
