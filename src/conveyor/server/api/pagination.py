"""GitLab's offset pagination (rest-api.md 1.5), one helper for every list route.

``page_of(params)`` reads ``page`` and ``per_page`` (default 20, clamped to 1..100); the route
asks its query for ``page.limit`` rows at ``page.offset`` (plus a count, or one row more when the
list is uncounted, as GitLab's ``/projects/:id/jobs``) and answers with ``respond``, which sets
``X-Page``, ``X-Per-Page``, ``X-Next-Page``, ``X-Prev-Page``, ``X-Total``, ``X-Total-Pages`` and
``Link`` on the configured external URL, as GitLab's ``Gitlab::Pagination::OffsetHeaderBuilder``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import JSONResponse

from conveyor.server.errors import ParamError

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
MAX_COUNTED = 10_000
MAX_PAGE = 2**31  # past it the offset would overflow PostgreSQL's bigint: clamped like per_page  # GitLab leaves X-Total and X-Total-Pages out past this many items


@dataclass(frozen=True)
class Page:
    number: int = 1
    size: int = DEFAULT_PER_PAGE

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def limit(self) -> int:
        return self.size

    def window(self, items: Sequence[Any]) -> list[Any]:
        """This page of a list already in memory (git refs and commits)."""
        return list(items[self.offset : self.offset + self.size])


def _integer(found: dict[str, Any], name: str, default: int) -> int:
    value = found.get(name)
    if value is None or value == "":
        return default
    try:
        return int(str(value).strip())
    except ValueError:
        raise ParamError(f"{name} is invalid") from None


def page_of(found: dict[str, Any]) -> Page:
    """``page`` (from 1) and ``per_page`` (1..100): out-of-range values are clamped, as GitLab does."""
    number = min(MAX_PAGE, max(1, _integer(found, "page", 1)))
    size = min(MAX_PER_PAGE, max(1, _integer(found, "per_page", DEFAULT_PER_PAGE)))
    return Page(number, size)


def respond(
    request: Request, items: list[Any], page: Page, total: int | None, *, more: bool | None = None
) -> JSONResponse:
    """The page as JSON with GitLab's headers.

    Args:
        total: every item's count; None for an uncounted list (then ``more`` says whether a
            next page exists, and ``X-Total``/``X-Total-Pages`` and ``rel="last"`` are left out).
    """
    counted = total is not None and total <= MAX_COUNTED
    pages = max(1, -(-total // page.size)) if total is not None else None
    has_next = page.number < pages if pages is not None else bool(more)
    has_prev = page.number > 1
    head = {
        "X-Page": str(page.number),
        "X-Per-Page": str(page.size),
        "X-Next-Page": str(page.number + 1) if has_next else "",
        "X-Prev-Page": str(page.number - 1) if has_prev else "",
    }
    links = []
    if has_prev:
        links.append(f'<{_link(request, page.number - 1, page.size)}>; rel="prev"')
    if has_next:
        links.append(f'<{_link(request, page.number + 1, page.size)}>; rel="next"')
    links.append(f'<{_link(request, 1, page.size)}>; rel="first"')
    if counted and pages is not None:
        head["X-Total"] = str(total)
        head["X-Total-Pages"] = str(pages)
        links.append(f'<{_link(request, pages, page.size)}>; rel="last"')
    head["Link"] = ", ".join(links)
    return JSONResponse(items, headers=head)


def _link(request: Request, number: int, size: int) -> str:
    """The request's URL on the external base, its query kept, ``page``/``per_page`` replaced."""
    base = request.scope["state"]["services"].settings.base_url
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if raw else request.url.path
    query = [(k, v) for k, v in request.query_params.multi_items() if k not in ("page", "per_page")]
    query += [("page", str(number)), ("per_page", str(size))]
    return f"{base}{path}?{urlencode(query)}"


def respond_all(request: Request, items: Sequence[Any], found: dict[str, Any]) -> JSONResponse:
    """A short list already in memory (a project's variables, hooks, triggers...), paged here."""
    page = page_of(found)
    return respond(request, page.window(items), page, len(items))
