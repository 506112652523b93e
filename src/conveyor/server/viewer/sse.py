"""Server-Sent Events framing for job logs, binary-safe and exact to the byte.

A ``log`` event's ``id:`` is the byte offset just past its bytes, so a client that reconnects
with ``Last-Event-ID`` resumes exactly there. Its ``data:`` is one JSON object:
``{"text": …}`` when the bytes are valid UTF-8 (JSON escapes CR and LF, which SSE line parsing
would otherwise fold), else ``{"base64": …}``. A multibyte UTF-8 character is never split across
two events: an incomplete one at the end of what was read is held back until its other bytes come.
"""

from __future__ import annotations

import base64
import json

KEEPALIVE = b": keepalive\n\n"


def split_utf8(data: bytes) -> tuple[bytes, bytes]:
    """(head, tail): ``tail`` is an incomplete UTF-8 character at the very end (at most 3 bytes)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:  # a continuation byte: look further back for the lead byte
            continue
        if 0xC2 <= byte <= 0xF4:  # a lead byte that can start a valid character
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            if back < need:
                return data[:-back], data[-back:]
        break
    return data, b""


def payload(data: bytes) -> dict[str, str]:
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def decode(body: dict[str, str]) -> bytes:
    """The bytes of a ``log`` event's parsed data (what clients do)."""
    if "text" in body:
        return body["text"].encode("utf-8")
    return base64.b64decode(body["base64"])


def log_event(data: bytes, end: int) -> bytes:
    body = json.dumps(payload(data), ensure_ascii=False, separators=(",", ":"))
    return f"id: {end}\nevent: log\ndata: {body}\n\n".encode()


def end_event(status: str, size: int) -> bytes:
    body = json.dumps({"status": status, "size": size}, separators=(",", ":"))
    return f"id: {size}\nevent: end\ndata: {body}\n\n".encode()


def retry_field(seconds: float) -> bytes:
    return f"retry: {int(seconds * 1000)}\n\n".encode()
