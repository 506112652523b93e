"""Push webhooks' forge detection, secret checks and payloads; Grape-style parameter intake;
schedules' cron and time zones; credentials kept out of git errors."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timezone

import pytest

from conveyor.server.api.params import _assign, _listify
from conveyor.server.automation import forges
from conveyor.server.automation.schedules import next_run
from conveyor.server.errors import Invalid, Unauthorized
from conveyor.server.sources.git import redact

pytestmark = pytest.mark.unit
SECRET = "s3cret"
BODY = json.dumps({"ref": "refs/heads/main", "before": "a" * 40, "after": "b" * 40}).encode()


def _sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("headers", "forge"),
    [
        ({"x-gitlab-event": "Push Hook", "x-gitlab-token": SECRET}, "gitlab"),
        ({"x-github-event": "push", "x-hub-signature-256": "sha256=" + _sign(BODY)}, "github"),
        ({"x-gitea-event": "push", "x-github-event": "push", "x-gitea-signature": _sign(BODY)}, "gitea"),
        ({"x-forgejo-event": "push", "x-forgejo-signature": _sign(BODY)}, "gitea"),
    ],
)
def test_each_forges_secret_is_accepted(headers: dict, forge: str) -> None:
    assert forges.forge_of(headers) == forge
    forges.verify(forge, headers, BODY, SECRET)


@pytest.mark.parametrize(
    ("forge", "headers", "secret"),
    [
        ("gitlab", {"x-gitlab-token": "wrong"}, SECRET),
        ("gitlab", {}, SECRET),
        ("github", {"x-hub-signature-256": _sign(BODY)}, SECRET),  # the sha256= prefix is part of it
        ("github", {"x-hub-signature-256": "sha256=" + _sign(BODY + b" ")}, SECRET),  # another body
        ("gitea", {"x-gitea-signature": "sha256=" + _sign(BODY)}, SECRET),  # Gitea's has no prefix
        ("gitlab", {"x-gitlab-token": ""}, None),  # no secret configured: nothing is accepted
    ],
)
def test_wrong_missing_or_unset_secrets_are_refused(forge: str, headers: dict, secret: str | None) -> None:
    with pytest.raises(Unauthorized):
        forges.verify(forge, headers, BODY, secret)


def test_push_payloads_of_each_forge() -> None:
    tag = forges.parse("gitlab", {"x-gitlab-event-uuid": "u1"}, json.dumps(
        {"ref": "refs/tags/v1", "before": "0" * 40, "after": "c" * 40, "checkout_sha": "d" * 40}).encode())
    assert (tag.ref, tag.tag, tag.after, tag.deleted, tag.delivery_id) == ("v1", True, "d" * 40, False, "gitlab:u1")
    deleted = forges.parse("github", {}, json.dumps({"ref": "refs/heads/x", "after": "0" * 40, "deleted": True}).encode())
    assert deleted.deleted and deleted.delivery_id is None
    form = forges.parse("gitea", {"content-type": "application/x-www-form-urlencoded"},
                        b"payload=" + json.dumps({"ref": "refs/heads/dev", "after": "e" * 40,
                                                  "head_commit": {"message": "x [ci skip]"}}).encode())
    assert (form.ref, form.message) == ("dev", "x [ci skip]")


def test_grape_style_nested_parameters() -> None:
    params: dict = {}
    for name, value in [("variables[KEY]", "v"), ("scope[]", "a"), ("scope[]", "b"),
                        ("vars[0][key]", "A"), ("vars[0][value]", "1"), ("vars[1][key]", "B")]:
        _assign(params, name, value)
    assert _listify(params) == {"variables": {"KEY": "v"}, "scope": ["a", "b"],
                                "vars": [{"key": "A", "value": "1"}, {"key": "B"}]}


def test_cron_in_a_time_zone_and_its_errors() -> None:
    after = datetime(2026, 7, 1, 12, 0, tzinfo=timezone.utc)
    assert next_run("0 3 * * *", "Europe/Paris", after) == datetime(2026, 7, 2, 1, 0, tzinfo=timezone.utc)
    assert next_run("0 3 * * *", "Pacific Time (US & Canada)", after) == datetime(2026, 7, 2, 10, 0, tzinfo=timezone.utc)
    with pytest.raises(Invalid) as bad:
        next_run("* * * * * *", "UTC")  # GitLab's cron has five fields
    assert bad.value.details == {"cron": ["is invalid syntax"]}
    with pytest.raises(Invalid) as zone:
        next_run("* * * * *", "Mars/Olympus")
    assert zone.value.details == {"cron_timezone": ["is invalid syntax"]}


def test_git_errors_never_carry_url_credentials() -> None:
    """Regression: a failed clone of https://user:token@host put the token in the API's error."""
    message = "git clone --mirror https://deploy:glpat-abc123@git.example.com/g/p.git failed: fatal"
    assert redact(message) == "git clone --mirror https://[MASKED]@git.example.com/g/p.git failed: fatal"


def test_webhook_bodies_never_carry_masked_values() -> None:
    from conveyor.server.automation.hookbodies import scrub

    body = {"object_attributes": {"variables": [{"key": "K", "value": "pre-Sup3r/S3cret=-post"}]}, "n": 1}
    assert scrub(body, ["Sup3r/S3cret="]) == {"object_attributes": {"variables": [{"key": "K", "value": "pre-[MASKED]-post"}]}, "n": 1}
