"""CI/CD variables: GitLab's validation texts, encryption at rest, and the precedence table."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from conveyor.server.errors import Invalid, SettingsError
from conveyor.server.queue import payload
from conveyor.server.variables import SecretBox, SecretsKeyMissing, user_variables
from conveyor.server.variables.assembly import PipelineFacts
from conveyor.server.variables.rules import Attributes, check

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("attrs", "errors"),
    [
        (Attributes("BAD-KEY", "v"), {"key": ["can contain only letters, digits and '_'."]}),
        (Attributes("K" * 256, "v"), {"key": ["is too long (maximum is 255 characters)"]}),
        (Attributes("K", "short", masked=True), {"value": ["is invalid"]}),
        (Attributes("K", "has space in it", masked=True), {"value": ["is invalid"]}),
        (Attributes("K", "two\nlines!", masked=True, raw=True), {"value": ["is invalid"]}),
        (Attributes("K", "a$b!c%d&e", masked=True), {"value": ["is invalid"]}),
        (Attributes("K", "v", hidden=True), {"masked": ["should be true when variable is hidden"]}),
        (Attributes("K", "v", description="d" * 256), {"description": ["is too long (maximum is 255 characters)"]}),
    ],
)
def test_gitlabs_rules_and_texts(attrs: Attributes, errors: dict) -> None:
    with pytest.raises(Invalid) as caught:
        check(attrs)
    assert caught.value.details == errors


@pytest.mark.parametrize("value,raw", [("Zm9v+/=@:.~-_1", False), ("a$b!c%d&e", True)])
def test_masked_values_gitlab_accepts(value: str, raw: bool) -> None:
    check(Attributes("K", value, masked=True, raw=raw))


def test_secrets_are_encrypted_and_keys_rotate() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    stored = SecretBox(old).encrypt("hunter2-secret")
    assert "hunter2" not in stored
    assert SecretBox(f"{new},{old}").decrypt(stored) == "hunter2-secret"
    with pytest.raises(SettingsError, match="does not decrypt"):
        SecretBox(new).decrypt(stored)
    with pytest.raises(SecretsKeyMissing, match="CONVEYOR_SECRETS_KEY is not set"):
        SecretBox(None).encrypt("x")
    with pytest.raises(SettingsError, match="Fernet keys"):
        SecretBox("not-a-key")


def _row(key: str, value: str, **extra: object) -> dict:
    return {"key": key, "value": value, "protected": False, "masked": False, "raw": False,
            "variable_type": "env_var", "environment_scope": "*", **extra}


def _final(job_protected: bool = True, environment: str | None = "production") -> dict[str, str]:
    """Every source defines V_<level and above>; the job's final value of each tells who won."""
    instance = [_row(k, "instance") for k in ("V_INSTANCE", "V_PROJECT", "V_PIPELINE")]
    project = [_row(k, "project") for k in ("V_PROJECT", "V_PIPELINE")]
    project += [
        _row("SCOPED", "star"), _row("SCOPED", "prod-exact", environment_scope="production"),
        _row("SCOPED", "prod-wild", environment_scope="prod*"), _row("OTHER_ENV", "x", environment_scope="staging"),
        _row("PROTECTED_ONLY", "p", protected=True),
    ]
    facts = PipelineFacts.of({"ref": "main", "source": "trigger", "variables": {"V_PIPELINE": "pipeline"}})
    facts = PipelineFacts(
        source=facts.source,
        variables=user_variables(instance, project, {"V_PIPELINE": "pipeline"}, protected=job_protected,
                                 environment=environment, decrypt=str),
    )
    spec = {
        "name": "j", "stage": "test", "stage_idx": 0, "script": ["true"],
        "variables": {"V_YAML": "yaml", "V_INSTANCE": "yaml", "V_PROJECT": "yaml", "V_PIPELINE": "yaml",
                      "CI_PIPELINE_SOURCE": "yaml"},
        "predefined_variables": {"CI_ENVIRONMENT_NAME": environment} if environment else {},
    }
    job = {"id": 7, "name": "j", "stage": "test", "spec": spec, "protected": job_protected}
    built = payload.build(
        job, {"id": 1, "name": "p", "default_branch": "main"}, {"id": 3, "ref": "main", "sha": "a" * 40},
        token="glcbt-x", repo_url="file:///r", server_url="http://s", default_timeout=60, facts=facts,
    )
    final: dict[str, str] = {}
    for variable in built.variables:  # the runner's rule: the last of one name wins
        final[variable.key] = variable.value
    return final


def test_precedence_table_matches_gitlabs_documented_order() -> None:
    """predefined < YAML < instance < project < pipeline (trigger/schedule/API)."""
    final = _final()
    assert final["CI_PIPELINE_SOURCE"] == "yaml"  # YAML beats predefined
    assert final["V_YAML"] == "yaml"
    assert final["V_INSTANCE"] == "instance"  # instance beats YAML
    assert final["V_PROJECT"] == "project"  # project beats instance
    assert final["V_PIPELINE"] == "pipeline"  # pipeline beats project
    assert final["SCOPED"] == "prod-exact"  # the most specific environment scope
    assert "OTHER_ENV" not in final
    assert final["PROTECTED_ONLY"] == "p"


def test_scopes_and_protection_filter_per_job() -> None:
    final = _final(job_protected=False, environment="prod-eu")
    assert final["SCOPED"] == "prod-wild"
    assert "PROTECTED_ONLY" not in final
    assert _final(environment=None)["SCOPED"] == "star"
