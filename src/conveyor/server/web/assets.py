"""The web UI's static files: served from memory under content-hashed URLs, cached for good.

``url(name)`` is ``/-/static/<name>?v=<hash>``; an ES module's imports of its siblings
(``from "./ansi.js"``) are rewritten to those URLs as it is loaded, so every file of a page,
imported ones included, is fetched once and then comes from the browser's cache
(``immutable``) until its content changes. A request without the current hash is answered too,
with ``no-cache`` (revalidated by ETag). Imports nothing of Conveyor's.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response

from conveyor.server.errors import NotFound

STATIC = Path(__file__).parent / "static"
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
FOREVER = "public, max-age=31536000, immutable"
_IMPORT = re.compile(rb'(from\s+")\./([\w.-]+\.js)(")')


@dataclass(frozen=True)
class Asset:
    body: bytes
    version: str
    media_type: str


_assets: dict[str, Asset] = {}
router = APIRouter()


def asset(name: str) -> Asset:
    """The file ``name`` of ``static/`` (imports rewritten), loaded once per process."""
    if name not in _assets:
        path = STATIC / name
        if "/" in name or path.suffix not in TYPES or not path.is_file():
            raise NotFound("404 Not Found")
        body = path.read_bytes()
        if path.suffix == ".js":
            body = _IMPORT.sub(lambda m: b'%s./%s?v=%s%s' % (m[1], m[2], asset(m[2].decode()).version.encode(), m[3]), body)
        _assets[name] = Asset(body, hashlib.sha256(body).hexdigest()[:12], TYPES[path.suffix])
    return _assets[name]


def load_all() -> int:
    """Load (and hash) every static file now, not at the first page that names it; returns how many."""
    names = [path.name for path in STATIC.iterdir() if path.suffix in TYPES and path.is_file()]
    for name in names:
        asset(name)
    return len(names)


def url(name: str) -> str:
    """``/-/static/<name>?v=<content hash>``: a changed file gets a new URL."""
    return f"/-/static/{name}?v={asset(name).version}"


@router.get("/static/{name}")
async def static_file(request: Request, name: str, v: str = "") -> Response:
    found = asset(name)
    etag = f'"{found.version}"'
    headers = {"ETag": etag, "Cache-Control": FOREVER if v == found.version else "no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=found.media_type, headers=headers)
