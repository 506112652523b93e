"""The web site as a sub-application mounted at ``/-``: its routers, static files, the security
headers every response carries, and errors rendered as pages (never JSON)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.server.errors import ServerError
from conveyor.server.web import actions, assets, logs, pages
from conveyor.server.web.render import SignIn, compile_templates, page, signed_in

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'; object-src 'none'; "
    "require-trusted-types-for 'script'; trusted-types 'none'"
)
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=(), clipboard-read=()"),
]


class SecurityHeaders:
    """Adds the headers above, and the CSP unless a response set its own (raw logs: sandbox)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in HEADERS if n not in names]
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", CSP.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, sending)


def create_site() -> FastAPI:
    site = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    site.add_middleware(SecurityHeaders)
    site.add_exception_handler(ServerError, _error_page)
    site.include_router(assets.router)
    site.include_router(pages.router)
    site.include_router(actions.router)
    site.include_router(logs.router)
    return site


def warm() -> None:
    """What the site's first pages would otherwise do while someone waits: every template
    compiled, every static file loaded. ``server/app.py`` calls it before the server accepts."""
    compile_templates()
    assets.load_all()


async def _error_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServerError)
    if isinstance(exc, SignIn) and request.method == "GET" and "text/html" in request.headers.get("accept", ""):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        ended = f"&ended={exc.reason}" if exc.reason else ""
        return RedirectResponse(f"/-/login?next={quote(target, safe='/')}{ended}", status_code=303)
    try:
        session = await signed_in(request)
    except ServerError:
        session = None
    return await page(request, "error.html", session, status_code=exc.status_code, message=str(exc))

