"""Runner registration and lifecycle (runner-api.md 2): create, register, verify, unregister, reset.

``POST /user/runners`` is GitLab's REST API (``PRIVATE-TOKEN`` with ``create_runner``); the rest is
the runner API, authenticated by the ``token`` in the body (JSON, form or multipart), also on
``DELETE``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from conveyor.protocol import (
    RegisterRunnerRequest,
    RegistrationDetails,
    ResetTokenResponse,
    RunnerTokenRequest,
    UnregisterManagerRequest,
    VerifyRunnerRequest,
)
from conveyor.server.accounts import Registered
from conveyor.server.accounts.access import Actor, Role
from conveyor.server.api import params
from conveyor.server.api.deps import access_to, services, token_actor
from conveyor.server.errors import BadRequest, Forbidden, InsufficientScope

router = APIRouter(prefix="/api/v4")


class CreateRunnerRequest(BaseModel):
    """``POST /user/runners``; ``runner_type`` defaults to ``instance_type`` (GitLab requires it)."""

    model_config = ConfigDict(extra="allow")

    runner_type: str | None = None
    description: str | None = None
    maintenance_note: str | None = None
    tag_list: str | list[str] | None = None
    run_untagged: bool | None = None
    locked: bool | None = None
    paused: bool | None = None
    access_level: str | None = None
    maximum_timeout: int | None = None


_RUNNER_SETTINGS = {
    "runner_type", "description", "tag_list", "run_untagged", "locked", "paused", "access_level", "maximum_timeout"
}


def _timestamp(value: datetime | None) -> str | None:
    """GitLab's JSON time: ``2027-01-01T00:00:00.000Z``."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _details(runner: Registered, status_code: int) -> JSONResponse:
    body = RegistrationDetails(id=runner.id, token=runner.token, token_expires_at=_timestamp(runner.token_expires_at))
    return JSONResponse(body.model_dump(), status_code=status_code)


@router.post("/user/runners", status_code=201)
async def create_runner(request: Request, actor: Actor = Depends(token_actor)) -> JSONResponse:
    """Create a runner; its ``glrt-`` token is returned once and stored hashed.

    Needs the ``create_runner`` (or ``api``) scope, and: an administrator for ``instance_type``,
    a maintainer of ``project_id`` for ``project_type``, an owner of ``group_id`` for ``group_type``.
    """
    body = params.validated(CreateRunnerRequest, await params.read(request))
    if not {"create_runner", "api"} & actor.scopes:
        raise InsufficientScope("create_runner")
    svc = services(request)
    kind = body.runner_type or "instance_type"
    scope: dict[str, int] = {}
    if kind == "project_type":
        project = params.text(body.model_extra or {}, "project_id", required=True) or ""
        scope["project_id"] = (await access_to(request, project, actor, Role.MAINTAINER)).project_id
    elif kind == "group_type":
        group = params.text(body.model_extra or {}, "group_id", required=True) or ""
        scope["namespace_id"] = int((await svc.users.namespace(group, kind="group"))["id"])
        if await svc.members.group_role(actor, scope["namespace_id"]) < Role.OWNER:
            raise Forbidden("403 Forbidden")
    elif not actor.admin:
        raise Forbidden("403 Forbidden")
    return _details(await svc.runners.create(body.model_dump(include=_RUNNER_SETTINGS), **scope), 201)


@router.post("/runners", status_code=201)
async def register_runner(request: Request, body: Annotated[RegisterRunnerRequest, Depends(params.model_body(RegisterRunnerRequest))]) -> JSONResponse:
    """Legacy registration with the instance registration token (403 wrong, 410 switched off)."""
    if body.paused is not None and body.active is not None:
        raise BadRequest("400 Bad request - paused, active are mutually exclusive")
    paused = body.paused if body.active is None else not body.active
    fields: dict[str, Any] = {
        "description": body.description,
        "tag_list": body.tag_list,
        "run_untagged": body.run_untagged,
        "locked": body.locked,
        "paused": paused,
        "access_level": body.access_level,
        "maximum_timeout": body.maximum_timeout,
    }
    svc = services(request)
    registered = await svc.runners.register(
        body.token, fields, accepted=svc.settings.runner_registration_token, system_id=body.system_id, info=body.info
    )
    return _details(registered, 201)


@router.post("/runners/verify")
async def verify_runner(request: Request, body: Annotated[VerifyRunnerRequest, Depends(params.model_body(VerifyRunnerRequest))]) -> JSONResponse:
    """Check a token and record the runner manager (``system_id``) with its ``info``."""
    runner = await services(request).runners.verify(body.token, body.system_id, body.info)
    details = RegistrationDetails(id=runner.id, token=body.token, token_expires_at=_timestamp(runner.token_expires_at))
    return JSONResponse(details.model_dump())


@router.delete("/runners", status_code=204)
async def unregister_runner(request: Request, body: Annotated[RunnerTokenRequest, Depends(params.model_body(RunnerTokenRequest))]) -> Response:
    await services(request).runners.unregister(body.token)
    return Response(status_code=204)


@router.delete("/runners/managers", status_code=204)
async def unregister_runner_manager(request: Request, body: Annotated[UnregisterManagerRequest, Depends(params.model_body(UnregisterManagerRequest))]) -> Response:
    await services(request).runners.unregister_manager(body.token, body.system_id)
    return Response(status_code=204)


@router.post("/runners/reset_authentication_token", status_code=201)
async def reset_runner_token(request: Request, body: Annotated[RunnerTokenRequest, Depends(params.model_body(RunnerTokenRequest))]) -> JSONResponse:
    """Rotate the token: the old one stops working at once."""
    runner = await services(request).runners.reset_token(body.token)
    reset = ResetTokenResponse(token=runner.token, token_expires_at=_timestamp(runner.token_expires_at))
    return JSONResponse(reset.model_dump(), status_code=201)
