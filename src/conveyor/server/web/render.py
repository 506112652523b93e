"""Rendering and request plumbing shared by the pages: the Jinja2 environment (autoescape on
for every template), versioned static URLs, the signed-in person, the CSRF check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup

from conveyor.server.api.deps import services
from conveyor.server.errors import Forbidden, Unauthorized
from conveyor.server.web import assets
from conveyor.server.web.sessions import Session, Sessions, cookie_name, same_origin

HERE = Path(__file__).parent
_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True)


class SignIn(Unauthorized):
    """Sign in first"""



def page_data(value: Any) -> Markup:
    """JSON for a ``<script type="application/json">`` block: ``<`` escaped so it cannot end it."""
    text = json.dumps(value, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


_env.globals.update(static=assets.url, page_data=page_data)


def sessions(request: Request) -> Sessions:
    return services(request).web_sessions


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


async def signed_in(request: Request) -> Session:
    """The request's session, if its cookie is valid and its token still exists; else ``SignIn``."""
    session = await sessions(request).get(request.cookies.get(cookie_name(secure(request))))
    if session is None or not await services(request).admin_tokens.valid_digest(session.digest):
        raise SignIn()
    return session


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
        request=request, csrf=session.csrf if session else "", signed_in=session is not None, flash=flash, **context
    )
    return HTMLResponse(body, status_code=status_code)
