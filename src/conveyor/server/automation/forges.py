"""Push events as GitLab, GitHub and Gitea/Forgejo send them (rest-api.md 3.2, 3.3): which forge
sent a request, whether its secret is right (constant time, over the raw body), and the push.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from conveyor.server.errors import BadRequest, Unauthorized

ZERO_SHA = "0" * 40
PUSH_EVENTS = {"gitlab": ("Push Hook", "Tag Push Hook", "System Hook"), "github": ("push",), "gitea": ("push",)}


@dataclass(frozen=True)
class Push:
    ref: str  # branch or tag name, without refs/heads/ or refs/tags/
    tag: bool
    before: str
    after: str
    deleted: bool
    delivery_id: str | None
    message: str  # the head commit's message, for [ci skip]


def forge_of(headers: Mapping[str, str]) -> str | None:
    # Gitea and Forgejo also send X-GitHub-Event: look for them first
    if "x-gitea-event" in headers or "x-forgejo-event" in headers:
        return "gitea"
    if "x-gitlab-event" in headers:
        return "gitlab"
    if "x-github-event" in headers:
        return "github"
    return None


def event_of(forge: str, headers: Mapping[str, str]) -> str:
    name = {"gitlab": "x-gitlab-event", "github": "x-github-event"}.get(forge, "x-gitea-event")
    return headers.get(name) or headers.get("x-forgejo-event", "")


def verify(forge: str, headers: Mapping[str, str], body: bytes, secret: str | None) -> None:
    """Raise ``Unauthorized`` unless the request carries the project's secret. Every comparison
    is ``hmac.compare_digest``; a project without a secret accepts no push webhook at all."""
    if not secret:
        raise Unauthorized("401 Unauthorized")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if forge == "gitlab":
        given, wanted = headers.get("x-gitlab-token", ""), secret
    elif forge == "github":
        given, wanted = headers.get("x-hub-signature-256", ""), "sha256=" + expected
    else:
        given = headers.get("x-gitea-signature") or headers.get("x-forgejo-signature") or ""
        wanted = expected
        if not given and headers.get("x-hub-signature-256"):
            given, wanted = headers["x-hub-signature-256"], "sha256=" + expected
    if not given or not hmac.compare_digest(given.encode(), wanted.encode()):
        raise Unauthorized("401 Unauthorized")


def parse(forge: str, headers: Mapping[str, str], body: bytes) -> Push:
    """The push a verified body describes (JSON, or a form whose ``payload`` field is JSON)."""
    data = _json(headers, body)
    ref = str(data.get("ref") or "")
    if not ref:
        raise BadRequest("400 Bad request - the push event has no ref")
    tag = ref.startswith("refs/tags/")
    name = ref.removeprefix("refs/tags/") if tag else ref.removeprefix("refs/heads/")
    before = str(data.get("before") or ZERO_SHA)
    after = str((data.get("checkout_sha") if forge == "gitlab" else None) or data.get("after") or ZERO_SHA)
    deleted = bool(data.get("deleted")) or str(data.get("after") or ZERO_SHA) == ZERO_SHA
    delivery = (
        headers.get("x-gitlab-event-uuid") or headers.get("x-github-delivery")
        or headers.get("x-gitea-delivery") or headers.get("x-forgejo-delivery")
    )
    return Push(ref=name, tag=tag, before=before, after=after, deleted=deleted,
                delivery_id=f"{forge}:{delivery}" if delivery else None, message=_head_message(data, after))


def _json(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    kind = headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if kind == "application/x-www-form-urlencoded":
            return json.loads(parse_qs(body.decode())["payload"][0])
        data = json.loads(body)
    except (ValueError, KeyError, UnicodeDecodeError):
        raise BadRequest("400 Bad request - the push event is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("400 Bad request - the push event is not a JSON object")
    return data


def _head_message(data: dict[str, Any], after: str) -> str:
    head = data.get("head_commit")
    if isinstance(head, dict):
        return str(head.get("message") or "")
    for commit in data.get("commits") or []:
        if isinstance(commit, dict) and commit.get("id") == after:
            return str(commit.get("message") or "")
    return ""
