"""sqlcommenter query comments: who sent a statement, readable in ``pg_stat_activity``.

Each statement gets ``/*key='value',...*/`` appended, in the format of Google's sqlcommenter
(https://google.github.io/sqlcommenter/spec/): keys sorted, values URL-encoded then with ``'``
escaped, nothing added when a statement already carries a comment. The tags come from a context
variable that the HTTP middleware (``route``, ``request_id``, ``job_id``) and each background task
(``task``) set, so every statement of that request or task carries them:

    SELECT ... FROM jobs WHERE id = $1 /*application='conveyor',job_id='42',request_id='9f1c...',route='PATCH%20%2Fapi%2Fv4%2Fjobs%2F%7Bjob_id%7D%2Ftrace'*/

Mode ``route`` (the default since issue 24) leaves out ``request_id`` and ``job_id``, whose
per-request values make every statement text unique and so defeat asyncpg's prepared statement
cache: with ``full`` (all four tags, for tracing one request) every statement is prepared and
planned again, one more round trip each (bench/dispatch: 23 jobs/s against 38); ``off`` adds nothing.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any
from urllib.parse import quote

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

MODES = ("full", "route", "off")
_PER_REQUEST = frozenset({"request_id", "job_id"})
_tags: ContextVar[dict[str, str] | None] = ContextVar("conveyor_sql_tags", default=None)
_request: ContextVar[dict[str, Any] | None] = ContextVar("conveyor_sql_request", default=None)
_SCOPE_TAGS = "conveyor.sql_tags"  # the scope's tags, kept in the scope with the route they were read for


@contextlib.contextmanager
def tagged_request(scope: dict[str, Any], request_id: str) -> Iterator[None]:
    """Statements of this HTTP request carry its route and ``job_id``, read from the ASGI ``scope``
    when each statement is sent (routing fills them in after the middleware has run), and ``request_id``."""
    token = _request.set(scope)
    try:
        with tagged(request_id=request_id):
            yield
    finally:
        _request.reset(token)


def _request_tags() -> dict[str, str]:
    """The request's tags, worked out once per route of a request (every statement asks)."""
    scope = _request.get()
    if scope is None:
        return {}
    route, params = scope.get("route"), scope.get("path_params")
    known = scope.get(_SCOPE_TAGS)
    if known is not None and known[0] is route and known[1] is params:
        return known[2]
    tags = _scope_tags(scope, route)
    scope[_SCOPE_TAGS] = (route, params, tags)
    return tags


def _scope_tags(scope: dict[str, Any], route: Any) -> dict[str, str]:
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    tags = {"route": f"{scope.get('method', '')} {scope.get('root_path', '')}{path}" if path else f"{scope.get('method', '')} (unrouted)"}
    job_id = (scope.get("path_params") or {}).get("job_id")
    if job_id is not None:
        tags["job_id"] = str(job_id)
    return tags


@contextlib.contextmanager
def tagged(**tags: object) -> Iterator[None]:
    """Statements sent inside this block (and tasks it starts) carry ``tags`` added to the current ones."""
    current = _tags.get() or {}
    token = _tags.set({**current, **{k: str(v) for k, v in tags.items() if v is not None}})
    try:
        yield
    finally:
        _tags.reset(token)


def set_tags(**tags: object) -> None:
    """Add tags for the rest of the current context (a request once its route is known)."""
    current = _tags.get() or {}
    _tags.set({**current, **{k: str(v) for k, v in tags.items() if v is not None}})


def current_tags() -> dict[str, str]:
    return dict(_tags.get() or {})


def comment(tags: dict[str, str]) -> str:
    """``/*k='v',...*/`` per sqlcommenter; empty for no tags."""
    return _rendered(tuple(sorted(tags.items())))


@functools.lru_cache(maxsize=1024)
def _rendered(items: tuple[tuple[str, str], ...]) -> str:
    """A comment rendered once per set of tags: statements of a route or task share theirs, and
    URL-encoding them for every statement was ~6% of a statement's CPU in the server (issue 24).
    Mode ``full`` (a new ``request_id`` per request) only cycles the cache."""
    if not items:
        return ""
    return "/*" + ",".join(f"{quote(k, safe='')}='{_value(v)}'" for k, v in items) + "*/"


def _append(statement: str, text: str) -> str:
    if "/*" in statement:
        return statement  # sqlcommenter: never add to a statement that has a comment
    return f"{statement.rstrip().rstrip(';')} {text}"


# the same text object each time, too: asyncpg's statement cache hashes it once, not per statement.
# Only statements up to CACHED_LENGTH: a long one (many VALUES rows) may be new each time, and the
# cache stays a few MiB at most
_commented = functools.lru_cache(maxsize=2048)(_append)
CACHED_LENGTH = 4096


def _value(value: str) -> str:
    return quote(value, safe="").replace("'", "\\'")


class Commenter:
    """Appends the context's tags to every statement of the engines it is attached to."""

    def __init__(self, mode: str = "full", application: str = "conveyor") -> None:
        if mode not in MODES:
            raise ValueError(f"query comments must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode
        self.application = application

    def attach(self, engine: AsyncEngine) -> None:
        if self.mode != "off":
            event.listen(engine.sync_engine, "before_cursor_execute", self._before_cursor_execute, retval=True)

    def text(self) -> str:
        tags = {"application": self.application, **_request_tags(), **(_tags.get() or {})}
        if self.mode == "route":
            tags = {k: v for k, v in tags.items() if k not in _PER_REQUEST}
        return comment(tags)

    def apply(self, statement: str) -> str:
        if self.mode == "off":
            return statement
        if self.mode == "route" and len(statement) <= CACHED_LENGTH:  # few (statement, route) pairs
            return _commented(statement, self.text())
        return _append(statement, self.text())

    def _before_cursor_execute(self, conn, cursor, statement, parameters, context, executemany) -> tuple[str, Any]:  # noqa: ANN001
        return self.apply(statement), parameters
