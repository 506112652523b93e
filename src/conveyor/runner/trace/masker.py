"""Masker: replaces secrets in the trace with ``[MASKED]`` before anything is stored or sent.

Two kinds of secrets (runner-api.md section 10.3):

* values of variables with ``masked: true`` (and the job token), replaced whole;
* tokens by prefix (``glpat-``, ``glrt-``, ``glcbt-``, ...): the prefix stays, the body
  (``[A-Za-z0-9._=-]+``) becomes ``[MASKED]``.

A secret may straddle two writes. The masker therefore holds back the shortest tail that could
still grow into a secret (a proper prefix of a secret value, or of a token prefix) until more
data arrives or ``flush`` is called. A match is only applied once no longer secret could start at
the same position, so the output does not depend on how the input was split into writes.
A token body running to the end of the data is masked at once and the masker remembers to drop
the rest of the body from the next write.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from conveyor.runner.trace.base import Sink

MASK = b"[MASKED]"
# gitlab-runner masks glpat- always, and the rest with FF_MASK_ALL_DEFAULT_TOKENS (default on).
DEFAULT_TOKEN_PREFIXES = (
    "glpat-", "gloas-", "gldt-", "glrt-", "glcbt-", "glrtr-", "glptt-", "glft-", "glimt-",
    "glagent-", "glsoat-", "glffct-", "_gitlab_session=", "gltok-",
)  # fmt: skip
MAX_TOKEN_PREFIXES = 15
_BODY_CHARS = rb"A-Za-z0-9._=\-"
_BODY = re.compile(rb"[" + _BODY_CHARS + rb"]+")


@functools.lru_cache(maxsize=16)
def _prefix_pattern(prefixes: tuple[bytes, ...]) -> re.Pattern[bytes]:
    return re.compile(b"(?P<prefix>" + b"|".join(re.escape(p) for p in prefixes) + b")[" + _BODY_CHARS + b"]+")


def token_prefixes(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The default prefixes plus job-supplied ones, de-duplicated, at most 15 in total."""
    merged = dict.fromkeys([*DEFAULT_TOKEN_PREFIXES, *(p for p in extra if p)])
    return tuple(merged)[:MAX_TOKEN_PREFIXES]


class Masker:
    """Sink wrapper that masks secrets, also across write boundaries."""

    def __init__(self, sink: Sink, secrets: Iterable[str], prefixes: Iterable[str] = DEFAULT_TOKEN_PREFIXES) -> None:
        self._sink = sink
        values = {s.strip().encode() for s in secrets if s and s.strip()}
        self._secrets = sorted(values, key=len, reverse=True)
        self._prefixes = sorted({p.encode() for p in prefixes if p}, key=len, reverse=True)
        # Two patterns, not one alternation: the prefixes' is the same for every job and compiled
        # once (a job's combined pattern took ~0.3 ms to compile, its secrets alone ~0.06 ms).
        self._secret = re.compile(b"|".join(re.escape(s) for s in self._secrets)) if self._secrets else None
        self._prefix = _prefix_pattern(tuple(self._prefixes)) if self._prefixes else None
        longest_secret = len(self._secrets[0]) if self._secrets else 0
        longest_prefix = len(self._prefixes[0]) if self._prefixes else 0
        self._max_hold = max(longest_secret - 1, longest_prefix)
        # a tail can grow into a secret or a prefix only from that secret's first byte: the hold
        # check looks only at positions holding one, with only the candidates starting there
        self._by_first: dict[int, list[tuple[bytes, bool]]] = {}
        for value, is_secret in [*((s, True) for s in self._secrets), *((p, False) for p in self._prefixes)]:
            self._by_first.setdefault(value[0], []).append((value, is_secret))
        self._pending = b""
        self._in_token = False

    def write(self, data: bytes) -> None:
        if data:
            self._process(self._pending + bytes(data), final=False)

    def flush(self) -> None:
        self._process(self._pending, final=True)
        self._sink.flush()

    def _process(self, buf: bytes, *, final: bool) -> None:
        self._pending = b""
        pos = 0
        if self._in_token:  # the rest of a token body already replaced by [MASKED]
            body = _BODY.match(buf)
            pos = body.end() if body else 0
            if pos == len(buf) and not final:
                return
            self._in_token = False
        if self._secret is None and self._prefix is None:
            self._sink.write(buf[pos:])
            return
        out = bytearray()
        hold = len(buf) if final else self._partial_start(buf, pos)
        while True:
            if hold < pos:  # a match ran past the old candidate; look for one further on
                hold = self._partial_start(buf, pos)
            match, is_secret = self._search(buf, pos)
            if match is None or match.start() >= hold:
                out += buf[pos:hold]
                self._pending = buf[hold:]
                break
            out += buf[pos : match.start()]
            if is_secret:
                out += MASK
            else:
                out += match.group("prefix") + MASK
                if match.end() == len(buf) and not final:
                    self._in_token = True
            pos = match.end()
        if out:
            self._sink.write(bytes(out))

    def _search(self, buf: bytes, pos: int) -> tuple[re.Match[bytes] | None, bool]:
        """The leftmost secret or token at or after ``pos``, a secret first where both start."""
        secret = self._secret.search(buf, pos) if self._secret is not None else None
        prefix = self._prefix.search(buf, pos) if self._prefix is not None else None
        if prefix is not None and (secret is None or prefix.start() < secret.start()):
            return prefix, False
        return secret, True

    def _partial_start(self, buf: bytes, pos: int) -> int:
        """The first offset >= pos whose tail could still become a secret; len(buf) if none."""
        by_first = self._by_first
        for start in range(max(pos, len(buf) - self._max_hold), len(buf)):
            candidates = by_first.get(buf[start])
            if candidates is None:
                continue
            tail = buf[start:]
            for value, is_secret in candidates:
                # a secret must be longer than the tail; a prefix needs >= 1 body byte after it
                if (len(value) > len(tail) or not is_secret) and value.startswith(tail):
                    return start
        return len(buf)
