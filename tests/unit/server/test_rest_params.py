"""Parameter intake and pagination arithmetic of the REST API, without sockets."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from starlette.requests import Request

from conveyor.server.api import params
from conveyor.server.api.pagination import MAX_PAGE, page_of, respond
from conveyor.server.errors import ParamError

pytestmark = pytest.mark.unit


def _parsed(*pairs: tuple[str, str]) -> dict:
    found: dict = {}
    for name, value in pairs:
        params._assign(found, name, value)
    return params._listify(found)


def test_a_plain_value_then_a_bracketed_one_of_the_same_name() -> None:
    # found by schemathesis: "scope=x&scope[]=y" was a TypeError (a 500) on GET .../jobs
    assert _parsed(("scope", "x"), ("scope[]", "y")) == {"scope": ["y"]}
    assert _parsed(("variables", "x"), ("variables[A]", "1")) == {"variables": {"A": "1"}}
    assert _parsed(("scope[]", "a"), ("scope[]", "b")) == {"scope": ["a", "b"]}


def test_pages_are_clamped_as_gitlab_does() -> None:
    assert (page_of({}).number, page_of({}).size) == (1, 20)
    assert (page_of({"page": "0", "per_page": "1000"}).number, page_of({"per_page": "1000"}).size) == (1, 100)
    assert page_of({"page": str(10**30)}).number == MAX_PAGE  # an offset PostgreSQL can still take
    assert page_of({"page": "3", "per_page": "7"}).offset == 14
    with pytest.raises(ParamError, match="per_page is invalid"):
        page_of({"per_page": "x"})


def _request(query: str) -> Request:
    settings = SimpleNamespace(base_url="https://ci.example.com")
    return Request({"type": "http", "method": "GET", "path": "/api/v4/projects/g/p/pipelines",
                    "raw_path": b"/api/v4/projects/g%2Fp/pipelines", "query_string": query.encode(), "headers": [],
                    "state": {"services": SimpleNamespace(settings=settings)}})


def test_past_ten_thousand_items_the_totals_are_left_out() -> None:
    request = _request("ref=main&page=3&per_page=50")
    counted = respond(request, [], page_of({"page": "3", "per_page": "50"}), 10_000).headers
    assert (counted["X-Total"], counted["X-Total-Pages"], counted["X-Next-Page"]) == ("10000", "200", "4")
    big = respond(request, [], page_of({"page": "3", "per_page": "50"}), 10_001).headers
    assert "X-Total" not in big and "X-Total-Pages" not in big and 'rel="last"' not in big["Link"]
    assert big["X-Next-Page"] == "4"
    # the external URL and the encoded path as the client sent it, the rest of the query kept
    assert big["Link"].startswith('<https://ci.example.com/api/v4/projects/g%2Fp/pipelines?ref=main&page=2&per_page=50>; rel="prev"')


def test_dates_and_whole_numbers_in_gitlabs_words() -> None:
    from datetime import date

    assert params.day({"expires_at": "2027-01-31"}, "expires_at") == date(2027, 1, 31)
    assert params.day({"expires_at": "2027-01-31T10:00:00Z"}, "expires_at") == date(2027, 1, 31)
    assert params.day({}, "expires_at") is None and params.day({"expires_at": ""}, "expires_at") is None
    assert params.integer({"namespace_id": "7"}, "namespace_id") == 7 and params.integer({}, "namespace_id") is None
    for call, name in ((lambda: params.day({"expires_at": "soon"}, "expires_at"), "expires_at"),
                       (lambda: params.integer({"namespace_id": "x"}, "namespace_id"), "namespace_id")):
        with pytest.raises(ParamError, match=f"{name} is invalid"):
            call()
