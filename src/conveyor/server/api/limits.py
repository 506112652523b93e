"""ASGI middleware at the edge of the HTTP API: request bodies capped before they are read whole
(and before any token is looked at), and ``:id`` segments that arrive URL-encoded kept whole.

- A body is refused with 413 when its ``Content-Length`` says it is too large, unread, or as soon
  as the bytes received pass the limit (chunked bodies). The job log PATCH and artifact uploads
  keep their own limits (``runner_v4.MAX_PATCH_BODY``, ``artifact_size_limit``); push webhooks
  from forges get ``webhook_limit`` (GitHub sends up to 25 MB).
- ``/projects/group%2Fproject/...``: ASGI decodes ``%2F`` in ``scope["path"]``, which would split
  the segment; it is re-encoded from ``raw_path`` so the ``{project}`` parameter holds the whole
  path (``Projects.get`` decodes it).
"""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

OWN_LIMITS = re.compile(r"^/api/v4/jobs/\d+/(trace|artifacts)$")
WEBHOOK = re.compile(r"^/api/v4/projects/[^/]+/webhook$")
_ENCODED = re.compile(r"^/api/v4/(projects|groups|namespaces)/([^/]*%2[Ff][^/]*)(/.*)?$")


class RequestLimits:
    def __init__(self, app: ASGIApp, *, limit: int, webhook_limit: int) -> None:
        self.app = app
        self.limit = limit
        self.webhook_limit = webhook_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        _keep_encoded(scope)
        path = scope["path"]
        if OWN_LIMITS.match(path):
            await self.app(scope, receive, send)
            return
        limit = self.webhook_limit if WEBHOOK.match(path) else self.limit
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        received, over, answered = 0, False, False

        async def capped() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # the app sees a disconnect; the answer is ours
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            nonlocal answered
            if over and not answered:
                return  # whatever the app says about the cut body, the client gets 413
            answered = True
            await send(message)

        try:
            await self.app(scope, capped, guarded)
        except Exception:
            if not over or answered:
                raise
        if over and not answered:
            await _too_large(send, limit)


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"message": f"413 Request Entity Too Large - a request body carries at most {limit} bytes"}, separators=(",", ":")).encode()
    await send({
        "type": "http.response.start", "status": 413,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close")],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def _keep_encoded(scope: Scope) -> None:
    raw = scope.get("raw_path")
    if not raw or b"%2" not in raw:
        return
    match = _ENCODED.match(raw.decode("latin-1"))
    if match:
        kind, segment, rest = match.group(1), unquote(match.group(2)), unquote(match.group(3) or "")
        scope["path"] = f"/api/v4/{kind}/{segment.replace('%', '%25').replace('/', '%2F')}{rest}"
