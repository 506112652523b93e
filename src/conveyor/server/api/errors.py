"""One place that maps Conveyor errors to HTTP answers (GitLab's ``{"message": ...}`` bodies)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from conveyor.ciconfig import ConfigError
from conveyor.protocol import headers
from conveyor.protocol.trace import BadContentRange
from conveyor.server.api import params
from conveyor.server.errors import BlockedUrl, Forbidden, Invalid, RangeMismatch, ServerError


def install(app: FastAPI) -> None:
    app.add_exception_handler(ServerError, _server_error)
    app.add_exception_handler(ConfigError, _config_error)
    app.add_exception_handler(BadContentRange, _bad_request)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServerError)
    if isinstance(exc, (Invalid, BlockedUrl)):
        return JSONResponse({"message": exc.details}, status_code=exc.status_code)
    body = getattr(exc, "body", None)
    if isinstance(body, dict):  # OAuth's shape: invalid_token, insufficient_scope
        return JSONResponse(body, status_code=exc.status_code)
    response = JSONResponse({exc.body_key: str(exc)}, status_code=exc.status_code)
    if isinstance(exc, RangeMismatch):
        response.headers[headers.RANGE] = f"0-{exc.size}"
    if isinstance(exc, Forbidden) and exc.job_status:
        response.headers[headers.JOB_STATUS] = exc.job_status
    return response


async def _config_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConfigError)
    return JSONResponse({"message": {"base": str(exc).splitlines()}}, status_code=400)


async def _bad_request(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"message": f"400 Bad request - {exc}"}, status_code=400)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """Grape's wording: ``{"error": "token is missing, tag_list is invalid"}``, 400."""
    assert isinstance(exc, RequestValidationError)
    message = params.grape_message((e["loc"][1:], e["type"]) for e in exc.errors())
    return JSONResponse({"error": message}, status_code=400)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own answers (no such route, wrong method) in GitLab's ``error`` shape."""
    assert isinstance(exc, HTTPException)
    phrase = {404: "404 Not Found", 405: "405 Method Not Allowed"}.get(exc.status_code, f"{exc.status_code} {exc.detail}")
    return JSONResponse({"error": phrase}, status_code=exc.status_code, headers=getattr(exc, "headers", None))
