"""Following a job's log over Server-Sent Events, resuming by byte offset after any disconnect.

The server's ``log`` events carry ``id: <end offset>`` and JSON data (``text`` or ``base64``);
``event: end`` closes a finished job's stream. A dropped or silent connection (no event and no
``: keepalive`` comment for ``silence`` seconds) is reopened with ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx

RECONNECT_ERRORS = (httpx.TransportError, httpx.RemoteProtocolError)


@dataclass
class Event:
    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


async def parse(lines: AsyncIterator[str]) -> AsyncIterator[Event | None]:
    """Events as the WHATWG parser builds them; ``None`` for each comment (a heartbeat)."""
    event, data, seen = Event(), [], False
    async for line in lines:
        if not line:
            if seen:
                event.data = "\n".join(data)
                yield event
            event, data, seen = Event(), [], False
            continue
        if line.startswith(":"):
            yield None
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
            seen = True
        elif name == "event":
            event.event, seen = value, True
        elif name == "id":
            event.id, seen = value, True
        elif name == "retry" and value.isdigit():
            event.retry, seen = int(value), True


def log_bytes(event: Event) -> bytes:
    body = json.loads(event.data)
    return body["text"].encode("utf-8") if "text" in body else base64.b64decode(body["base64"])


async def follow_log(
    http: httpx.AsyncClient,
    path: str,
    on_data: Callable[[bytes], None],
    *,
    start: int = 0,
    silence: float = 60.0,
    retry: float = 1.0,
) -> str:
    """Feed the log at ``path`` (a ``…/trace/stream`` URL) to ``on_data`` until the job ends.

    Returns the job's final status. Every byte reaches ``on_data`` exactly once, whatever the
    number of reconnections: each one resumes at the offset of the last event received.
    """
    offset = start
    while True:
        try:
            headers = {"Last-Event-ID": str(offset), "Accept": "text/event-stream"}
            timeout = httpx.Timeout(30.0, read=silence)
            async with http.stream("GET", path, headers=headers, timeout=timeout) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise httpx.HTTPStatusError(response.text, request=response.request, response=response)
                async for event in parse(response.aiter_lines()):
                    if event is None:
                        continue
                    if event.retry is not None:
                        retry = event.retry / 1000
                    if event.event == "log" and event.id is not None:
                        on_data(log_bytes(event))
                        offset = int(event.id)
                    elif event.event == "end":
                        return json.loads(event.data)["status"]
        except RECONNECT_ERRORS:
            pass
        await asyncio.sleep(retry)  # closed without ``end`` (server restart) or dropped: resume
