"""Path patterns: Ruby's ``File.fnmatch`` with ``FNM_PATHNAME | FNM_DOTMATCH | FNM_EXTGLOB``
(``rules:changes``, ``rules:exists``, ``only:changes``) and GitLab's wildcard paths for
``include:local`` (``*`` stays in one directory, ``**`` crosses them).

fnmatch: ``*`` and ``?`` never cross ``/``; ``**/`` matches zero or more directories; ``[...]``
is a character class; ``{a,b}`` alternatives (nested allowed). Patterns are compiled once.
"""

from __future__ import annotations

import functools
import re

MAX_PATTERN_LENGTH = 1024


@functools.lru_cache(maxsize=1024)
def fnmatch_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(_translate(pattern[:MAX_PATTERN_LENGTH]) + r"\Z", re.S)


def fnmatch(pattern: str, path: str) -> bool:
    return fnmatch_regex(pattern).match(path) is not None


def _translate(pattern: str) -> str:
    out: list[str] = []
    depth = 0  # inside {...}
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append(r"(?:[^/]*/)*")
            i += 3
            continue
        if char == "*":
            out.append(r"[^/]*")
        elif char == "?":
            out.append(r"[^/]")
        elif char == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                out.append(r"\[")
            else:
                body = pattern[i + 1 : end]
                negate = body.startswith(("!", "^"))
                body = body[1:] if negate else body
                out.append(f"[{'^' if negate else ''}{re.escape(body).replace(chr(92) + '-', '-')}]")
                i = end
        elif char == "{":
            depth += 1
            out.append("(?:")
        elif char == "}" and depth:
            depth -= 1
            out.append(")")
        elif char == "," and depth:
            out.append("|")
        elif char == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(char))
        i += 1
    if depth:  # unbalanced braces are literal text
        return re.escape(pattern)
    return "".join(out)


@functools.lru_cache(maxsize=256)
def wildcard_regex(pattern: str) -> re.Pattern[str]:
    """``include:local`` wildcards: ``**`` -> any characters, ``*`` -> any but ``/``."""
    parts = [re.escape(part) for part in pattern.lstrip("/").split("**")]
    return re.compile(".*".join(part.replace(r"\*", "[^/]*") for part in parts) + r"\Z", re.S)


def has_wildcard(pattern: str) -> bool:
    return "*" in pattern
