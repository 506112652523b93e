"""Per-request context for the database (ASGI middleware, wired in ``app.py``): sqlcommenter tags and
the read-your-writes session.

A plain ASGI middleware: it runs the rest of the request with

- the query-comment tags ``route`` (``"PATCH /api/v4/jobs/{job_id}/trace"``), ``request_id``
  (the client's ``X-Request-Id`` or a new one, echoed in the response) and ``job_id`` (from the
  path) on every statement it sends (``db/comments.py``; route and job id are read from the
  ASGI scope when each statement is sent, after routing has filled them in);
- the ``WriteSession`` of its token (admin ``PRIVATE-TOKEN``/``Bearer``, ``JOB-TOKEN``, runner
  token), shared by that token's requests for a while, so a listing read from a replica after the
  same client's write sees the write (``db/replicas.py``).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from conveyor.server.db import comments, replicas

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_TOKEN_HEADERS = (b"private-token", b"job-token", b"authorization")


class DatabaseContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.sessions = replicas.StickySessions()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")
        if not _REQUEST_ID.match(request_id):
            request_id = uuid.uuid4().hex

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        with comments.tagged_request(scope, request_id), \
                replicas.write_session(self.sessions.get(_token_key(headers))):
            await self.app(scope, receive, send_with_id)


def _token_key(headers: dict[bytes, bytes]) -> str | None:
    for name in _TOKEN_HEADERS:
        value = headers.get(name)
        if value:
            return hashlib.sha256(name + b":" + value).hexdigest()
    return None
