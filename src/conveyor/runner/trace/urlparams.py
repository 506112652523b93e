"""UrlParamMasker: the values of sensitive URL parameters replaced with ``[MASKED]``, as
gitlab-runner's ``urlsanitizer`` does (``?private_token=…``, ``&X-Amz-Signature=…``: the key,
case-insensitive, stays; the value up to the next ``&``, ``?``, whitespace or control
character goes), also when a URL straddles writes or PATCHes.

A trailing ``?``/``&`` plus the start of a key is held back until the next write shows whether
it is one; a value running to the end of a write is dropped and the masker remembers to drop
the rest of it from the next write.
"""

from __future__ import annotations

import re

from conveyor.runner.trace.base import Sink

MASK = b"[MASKED]"
SENSITIVE = ("private_token", "authenticity_token", "rss_token", "x-amz-signature", "x-amz-credential",
             "x-amz-security-token")  # fmt: skip
_KEYS = re.compile(rb"[?&](?:" + b"|".join(k.encode() for k in SENSITIVE) + rb")=", re.IGNORECASE)
_VALUE_END = re.compile(rb"[?&\s\x00-\x1f\x7f]")
_LONGEST = max(len(k) for k in SENSITIVE) + 2  # separator, key, "="


class UrlParamMasker:
    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._pending = b""
        self._in_value = False

    def write(self, data: bytes) -> None:
        if data:
            self._process(self._pending + bytes(data), final=False)

    def flush(self) -> None:
        self._process(self._pending, final=True)
        self._in_value = False
        self._sink.flush()

    def _process(self, buf: bytes, *, final: bool) -> None:
        self._pending = b""
        out = bytearray()
        pos = 0
        while pos < len(buf):
            if self._in_value:
                end = _VALUE_END.search(buf, pos)
                if end is None:
                    pos = len(buf)
                    break
                self._in_value, pos = False, end.start()
                continue
            match = _KEYS.search(buf, pos)
            if match is None:
                hold = len(buf) if final else self._partial_start(buf, pos)
                out += buf[pos:hold]
                self._pending = buf[hold:]
                break
            out += buf[pos : match.end()] + MASK
            self._in_value, pos = True, match.end()
        if out:
            self._sink.write(bytes(out))

    @staticmethod
    def _partial_start(buf: bytes, pos: int) -> int:
        """Where a ``?``/``&`` starts that could still become a sensitive key; len(buf) if none."""
        for start in range(max(pos, len(buf) - _LONGEST), len(buf)):
            if buf[start] in b"?&":
                tail = buf[start + 1 :].lower()
                if any((key.encode() + b"=").startswith(tail) for key in SENSITIVE):
                    return start
        return len(buf)
