"""Grape's parameter intake (rest-api.md 1.3): query string, form, multipart and JSON bodies read
alike into one dict; a path parameter wins a clash (the router passes those separately).

Bracketed form names nest as Rails does: ``variables[KEY]=v`` is a hash, ``x[]=a&x[]=b`` an array,
``variables[0][key]=A`` an array of hashes (numeric keys of a hash become its list, in order).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import date
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from conveyor.server.errors import BadRequest, ParamError

M = TypeVar("M", bound=BaseModel)
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")

_PART = re.compile(r"\[([^\]]*)\]")
_TRUE = {"true", "1", "t", "yes", "y", "on"}
_FALSE = {"false", "0", "f", "no", "n", "off", ""}


async def read(request: Request) -> dict[str, Any]:
    """Every parameter of the request; the body's win over the query string's."""
    params: dict[str, Any] = {}
    for name, value in request.query_params.multi_items():
        _assign(params, name, value)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in FORMS:
        form = await request.form()
        for name, value in form.multi_items():
            if not isinstance(value, str):  # curl --form "name=@file": the file's text
                try:
                    value = (await value.read()).decode()
                except UnicodeDecodeError:
                    raise ParamError(f"{name} is invalid") from None
            _assign(params, name, value)
    else:
        body = await request.body()
        if body.strip():
            try:
                data = json.loads(body)
            except ValueError:
                raise BadRequest("400 Bad request - the body is not valid JSON") from None
            if isinstance(data, dict):
                params.update(data)
    return _listify(params)


def _assign(params: dict[str, Any], name: str, value: str) -> None:
    head = name.split("[", 1)[0]
    parts = [head] + _PART.findall(name[len(head):])
    node: Any = params
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        following = None if last else parts[index + 1]
        if isinstance(node, list):  # after "[]": append a value, or a new hash per "[][key]"
            if last:
                node.append(value)
                return
            if not node or not isinstance(node[-1], dict) or following in node[-1]:
                node.append({})
            node = node[-1]
            continue
        if last:
            node[part] = value
        else:
            child = node.get(part)
            if not isinstance(child, (list, dict)):  # "x=1&x[]=2": the bracketed form wins, as in Rack
                child = node[part] = [] if following == "" else {}
            node = child


def _listify(value: Any) -> Any:
    """Hashes whose keys are all digits (``variables[0][key]``) become lists, in index order."""
    if isinstance(value, dict):
        value = {k: _listify(v) for k, v in value.items()}
        if value and all(isinstance(k, str) and k.isdigit() for k in value):
            return [value[k] for k in sorted(value, key=int)]
        return value
    if isinstance(value, list):
        return [_listify(v) for v in value]
    return value


def boolean(params: dict[str, Any], name: str, default: bool | None = None) -> bool | None:
    """A Grape boolean: true/false, 1/0, t/f, yes/no; anything else is ``<name> is invalid``."""
    if name not in params or params[name] is None:
        return default
    value = params[name]
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ParamError(f"{name} is invalid")


def text(params: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None:
        if required:
            raise ParamError(f"{name} is missing")
        return None
    if isinstance(value, (dict, list)):
        raise ParamError(f"{name} is invalid")
    return str(value)


def integer(params: dict[str, Any], name: str) -> int | None:
    """An optional whole number (``namespace_id=5``): ``<name> is invalid`` otherwise."""
    value = text(params, name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ParamError(f"{name} is invalid") from None


def day(params: dict[str, Any], name: str) -> date | None:
    """An optional ISO date (``expires_at=2027-01-31``, a time after it ignored): ``<name> is invalid`` otherwise."""
    value = text(params, name)
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise ParamError(f"{name} is invalid") from None


def choice(params: dict[str, Any], name: str, allowed: tuple[str, ...], default: str | None = None) -> str | None:
    value = text(params, name)
    if value is None:
        return default
    if value not in allowed:
        raise ParamError(f"{name} does not have a valid value")
    return value


def filter_scope(params: dict[str, Any]) -> str | None:
    """``filter[environment_scope]`` from the query or the body."""
    found = params.get("filter")
    return str(found["environment_scope"]) if isinstance(found, dict) and "environment_scope" in found else None


def grape_message(problems: Iterable[tuple[Sequence[Any], str]]) -> str:
    """Pydantic's errors (location, type) in Grape's words: ``token is missing, tag_list is invalid``."""
    said: list[str] = []
    for location, kind in problems:
        path = [str(p) for p in location if not isinstance(p, int)] or ["body"]
        text = f"{path[-1]} is missing" if kind == "missing" else f"{'.'.join(path)} {_GRAPE.get(kind, 'is invalid')}"
        if text not in said:
            said.append(text)
    return ", ".join(said) or "400 Bad request"


_GRAPE = {"literal_error": "does not have a valid value", "enum": "does not have a valid value"}


def validated(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ParamError(grape_message((e["loc"], e["type"]) for e in exc.errors())) from None


def model_body(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency: ``model`` from a JSON body (parsed straight into the model: the runner API's
    hot path), or from form, multipart and query parameters as Grape takes them."""

    async def dependency(request: Request) -> M:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in FORMS and not request.scope.get("query_string"):  # not request.url: it builds the whole URL
            raw = await request.body()
            if raw.strip():
                try:
                    return model.model_validate_json(raw)
                except ValidationError as exc:
                    if any(e["type"] == "json_invalid" for e in exc.errors()):
                        raise BadRequest("400 Bad request - the body is not valid JSON") from None
                    raise ParamError(grape_message((e["loc"], e["type"]) for e in exc.errors())) from None
        return validated(model, await read(request))

    return dependency
