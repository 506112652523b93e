"""What the OpenAPI document says about routes that read ``params.read(request)``.

FastAPI documents the parameters it parses itself (path parameters); the routes that take
GitLab's parameters from the query, a form or a JSON body alike declare them here, in one small
table, so ``/api/v4/openapi.json`` lists them with their types and the answer's shape.
``doc(...)`` returns the keyword arguments of a route decorator (``openapi_extra``, ``responses``).
"""

from __future__ import annotations

from typing import Any

_INT = {"type": "integer"}
_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_ARRAY = {"type": "array", "items": {"type": "string"}}
OBJECT = {"type": "object"}
LIST = {"type": "array", "items": {"type": "object"}}
PAGING = ("page", "per_page")

# every parameter name a documented route takes, with its schema
TYPES: dict[str, dict[str, Any]] = {
    "page": {"type": "integer", "minimum": 1},
    "per_page": {"type": "integer", "minimum": 1},
    "search": _STR, "membership": _BOOL, "owned": _BOOL, "simple": _BOOL, "statistics": _BOOL,
    "namespace_id": {"type": "integer"},
    "order_by": _STR, "sort": {"type": "string", "enum": ["asc", "desc"]},
    "name": _STR, "path": _STR, "description": _STR, "import_url": _STR, "default_branch": _STR,
    "visibility": {"type": "string", "enum": ["private", "internal", "public"]}, "ci_config_path": _STR,
    "status": _STR, "ref": _STR, "sha": _STR, "source": _STR, "scope": _STR, "username": _STR,
    "updated_after": {"type": "string", "format": "date-time"},
    "updated_before": {"type": "string", "format": "date-time"},
    "created_after": {"type": "string", "format": "date-time"},
    "created_before": {"type": "string", "format": "date-time"},
    "scope[]": _ARRAY, "include_retried": _BOOL, "ref_name": _STR, "job": _STR, "job_token": _STR,
    "recursive": _BOOL, "regex": _STR, "all": _BOOL, "since": _STR, "until": _STR,
    "type": {"type": "string", "enum": ["instance_type", "group_type", "project_type"]},
    "paused": _BOOL, "active": _BOOL, "tag_list": _STR, "run_untagged": _BOOL, "locked": _BOOL,
    "access_level": {"type": "string", "enum": ["not_protected", "ref_protected"]},
    "maximum_timeout": {"type": "integer", "minimum": 600}, "maintenance_note": _STR, "runner_id": {"type": "integer"},
    "variables": {"type": "array", "items": {"type": "object", "properties": {"key": _STR, "value": _STR, "variable_type": _STR}}},
    "job_variables_attributes": {"type": "array", "items": {"type": "object", "properties": {"key": _STR, "value": _STR}}},
    "key": _STR, "value": _STR, "variable_type": {"type": "string", "enum": ["env_var", "file"]},
    "protected": _BOOL, "masked": _BOOL, "raw": _BOOL, "masked_and_hidden": _BOOL, "environment_scope": _STR,
    "url": _STR, "token": _STR, "push_events": _BOOL, "tag_push_events": _BOOL, "pipeline_events": _BOOL,
    "job_events": _BOOL, "enable_ssl_verification": _BOOL, "expires_at": {"type": "string", "format": "date"},
    "trigger_variables": {"type": "object", "additionalProperties": {"type": "string"}},
    "cron": _STR, "cron_timezone": _STR, "filter[environment_scope]": _STR, "runner_type": _STR,
}
_WIRE = {"trigger_variables": "variables"}  # a name TYPES keeps apart from another route's use of it
PAGE_HEADERS = {
    name: {"schema": _STR, "description": text}
    for name, text in (
        ("X-Page", "this page"), ("X-Per-Page", "items per page"), ("X-Next-Page", "the next page, empty on the last"),
        ("X-Prev-Page", "the previous page, empty on the first"), ("X-Total", "every item (left out past 10,000)"),
        ("X-Total-Pages", "the pages"), ("Link", 'rel="prev", "next", "first", "last" URLs'),
    )
}


def doc(
    query: tuple[str, ...] = (),
    body: tuple[str, ...] = (),
    *,
    required: tuple[str, ...] = (),
    answer: dict[str, Any] | None = None,
    status: int = 200,
    listing: bool = False,
    media: str = "application/json",
) -> dict[str, Any]:
    """Decorator keywords documenting a route's GitLab parameters and answer.

    Args:
        query: parameters read from the query string (``page``/``per_page`` added when ``listing``).
        body: parameters of a JSON or form body (GitLab takes them in the query too).
        required: those of ``body`` or ``query`` the route refuses to go without.
        answer: the answer's JSON schema (``LIST`` for lists, ``OBJECT`` otherwise); None for none.
        media: the answer's media type when it is not JSON (logs, archives).
    """
    names = (*query, *(PAGING if listing else ()))
    extra: dict[str, Any] = {}
    if names:
        extra["parameters"] = [
            {"name": n, "in": "query", "required": n in required, "schema": TYPES[n]} for n in names
        ]
    if body:
        schema = {"type": "object", "properties": {_WIRE.get(n, n): TYPES[n] for n in body}}
        needed = [_WIRE.get(n, n) for n in body if n in required]
        if needed:
            schema["required"] = needed
        forms = {m: {"schema": schema} for m in ("application/json", "application/x-www-form-urlencoded")}
        extra["requestBody"] = {"required": bool(needed), "content": forms}
    answers: dict[int | str, Any] = {}
    if answer is not None or media != "application/json":
        described: dict[str, Any] = {"description": "GitLab's answer"}
        described["content"] = {media: {"schema": answer if media == "application/json" else {"type": "string", "format": "binary"}}}
        if listing:
            described["headers"] = PAGE_HEADERS
        answers[status] = described
    return {"openapi_extra": extra, "responses": answers} if extra else {"responses": answers}
