"""Rendering and request plumbing shared by the pages: the Jinja2 environment (autoescape on
for every template), versioned static URLs, the signed-in person and what they may see and do
(the API's own checks: ``AdminTokens.authenticate_digest``, ``api.deps.access_to``), the CSRF check."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup

from conveyor.server.accounts.access import Access, Actor, Role
from conveyor.server.accounts.tokens import EXPIRED, REVOKED
from conveyor.server.api.deps import access_to, services
from conveyor.server.errors import Forbidden, Unauthorized
from conveyor.server.web import assets
from conveyor.server.web.sessions import Session, Sessions, cookie_name, same_origin

HERE = Path(__file__).parent
_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True)


# why a token does not sign in, as the sign-in page says it (``/-/login?ended=...``)
REFUSED = {
    "revoked": "the personal access token was revoked",
    "expired": "the personal access token has expired",
    "scope": "the personal access token needs the api or read_api scope",
    "refused": "the account is blocked or the token does not exist",
}


def ended(reason: str) -> str:
    return f"Your session has ended: {REFUSED[reason]}."


class SignIn(Unauthorized):
    """Sign in first; ``reason``: why the token no longer signs in (a key of ``REFUSED``)."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(ended(reason) if reason else "401 Unauthorized - sign in first")
        self.reason = reason


def page_data(value: Any) -> Markup:
    """JSON for a ``<script type="application/json">`` block: ``<`` escaped so it cannot end it."""
    text = json.dumps(value, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


_env.globals.update(static=assets.url, page_data=page_data)


def compile_templates() -> int:
    """Compile every template now (Jinja2 keeps them): a new process's first pages would each
    compile theirs (~50 ms for all of them) while someone waits. Returns how many."""
    names = _env.list_templates()
    for name in names:
        _env.get_template(name)
    return len(names)


def sessions(request: Request) -> Sessions:
    return services(request).web_sessions


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


async def authenticate(request: Request, digest: str) -> Actor:
    """The user a token (by its digest) signs in, as the REST API authenticates it; ``SignIn``
    with the reason when it cannot (revoked, expired, blocked, no ``api``/``read_api`` scope)."""
    try:
        actor = await services(request).admin_tokens.authenticate_digest(digest)
    except Unauthorized as exc:
        raise SignIn({REVOKED: "revoked", EXPIRED: "expired"}.get(str(exc), "refused")) from None
    if not actor.may_read():
        raise SignIn("scope")
    return actor


async def signed_in(request: Request) -> Session:
    """The request's session and its user, authenticated again on every request; else ``SignIn``
    (and a session whose token or user no longer passes is closed)."""
    session = await sessions(request).get(request.cookies.get(cookie_name(secure(request))))
    if session is None:
        raise SignIn()
    try:
        actor = await authenticate(request, session.digest)
    except SignIn:
        await sessions(request).close(session.id)
        raise
    return replace(session, actor=actor)


async def visit(request: Request, project: str, session: Session, role: Role = Role.GUEST) -> Access:
    """The signed-in user's access to ``project`` (the API's check: 404 unseen, 403 role too low)."""
    assert session.actor is not None
    return await access_to(request, project, session.actor, role)


async def acts(request: Request, project: str, session: Session) -> Access:
    """``visit`` for an action: Developer (GitLab's role for running, retrying, canceling), with a
    token that may write (``api``; ``read_api`` only reads); 403 in words otherwise."""
    access = await visit(request, project, session)
    if not access.may_act(Role.DEVELOPER):
        if access.role < Role.DEVELOPER:
            raise Forbidden("403 Forbidden - you need the Developer role in this project to do this")
        raise Forbidden("403 Forbidden - your token has the read_api scope: it can read, not act")
    return access


async def acting(request: Request) -> Session:
    """``signed_in`` for a state change: same origin, and the session's CSRF token sent back."""
    session = await signed_in(request)
    check_origin(request)
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        sent = str((await request.form()).get("csrf_token") or "")
    if sent != session.csrf:
        raise Forbidden("403 Forbidden - invalid CSRF token")
    return session


def check_origin(request: Request) -> None:
    origin = f"{request.url.scheme}://{request.url.netloc}"
    if not same_origin(request.headers.get("sec-fetch-site"), request.headers.get("origin"), origin):
        raise Forbidden("403 Forbidden - cross-site request")


async def page(request: Request, template: str, session: Session | None, status_code: int = 200, **context: Any) -> HTMLResponse:
    flash = await sessions(request).take_flash(session.id) if session else None
    body = _env.get_template(template).render(
        request=request, csrf=session.csrf if session else "", signed_in=session is not None, flash=flash,
        user=session.actor if session else None, **context
    )
    return HTMLResponse(body, status_code=status_code)
