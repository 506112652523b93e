"""sqlcommenter query comments: who sent a statement, readable in ``pg_stat_activity``.

Each statement gets ``/*key='value',...*/`` appended, in the format of Google's sqlcommenter
(https://google.github.io/sqlcommenter/spec/): keys sorted, values URL-encoded then with ``'``
escaped, nothing added when a statement already carries a comment. The tags come from a context
variable that the HTTP middleware (``route``, ``request_id``, ``job_id``) and each background task
(``task``) set, so every statement of that request or task carries them:

    SELECT ... FROM jobs WHERE id = $1 /*application='conveyor',job_id='42',request_id='9f1c...',route='PATCH%20%2Fapi%2Fv4%2Fjobs%2F%7Bjob_id%7D%2Ftrace'*/

Mode ``full`` tags all four; ``route`` (the server's default) leaves out ``request_id`` and
``job_id``, whose per-request values make every statement text unique and so defeat asyncpg's
prepared statement cache (a prepare, one more round trip, per statement); ``off`` adds nothing.
"""

from __future__ import annotations

import contextlib
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
    scope = _request.get()
    if scope is None:
        return {}
    route = scope.get("route")
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
    if not tags:
        return ""
    parts = [f"{quote(k, safe='')}='{_value(v)}'" for k, v in sorted(tags.items())]
    return "/*" + ",".join(parts) + "*/"


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
        if self.mode == "off" or "/*" in statement:
            return statement  # sqlcommenter: never add to a statement that has a comment
        return f"{statement.rstrip().rstrip(';')} {self.text()}"

    def _before_cursor_execute(self, conn, cursor, statement, parameters, context, executemany) -> tuple[str, Any]:  # noqa: ANN001
        return self.apply(statement), parameters
