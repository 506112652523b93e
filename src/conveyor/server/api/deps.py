"""Request dependencies: the services container from lifespan state, the caller, and its access.

``current_actor`` authenticates a personal access token (``PRIVATE-TOKEN``, ``Authorization:
Bearer``, ``?private_token=``);
``project_access(Role.X)`` resolves ``{project}`` (an id or a URL-encoded path) and requires that
role: 404 when the caller cannot see the project (GitLab hides it), 403 when it can but the role is
too low; a read-only token (``read_api``) gets 403 for anything but GET and HEAD.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from conveyor.protocol import headers
from conveyor.server.accounts.access import Access, Actor, Role
from conveyor.server.errors import Forbidden, InsufficientScope, NotFound, Unauthorized

if TYPE_CHECKING:
    from conveyor.server.app import Services


def services(request: Request) -> Services:
    # the lifespan state as the scope carries it: ``request.state`` builds a State object per
    # request (2% of a 4 KiB log PATCH's CPU)
    return request.scope["state"]["services"]


def _token(request: Request) -> str | None:
    token = request.headers.get(headers.PRIVATE_TOKEN)
    bearer = request.headers.get("Authorization", "")
    if not token and bearer.lower().startswith("bearer "):
        token = bearer[7:].strip()
    if not token:  # GitLab also takes ?private_token= and ?access_token=
        token = request.query_params.get("private_token") or request.query_params.get("access_token")
    return token or None


async def token_actor(request: Request) -> Actor:
    """The caller of any scope (``read_user`` suffices for ``/user``, ``/version``): 401 when the
    token is unknown, revoked or expired, or its user is blocked."""
    cached = request.scope.get("conveyor.token_actor")
    if cached is not None:
        return cached
    token = _token(request)
    if not token:
        raise Unauthorized("401 Unauthorized")
    actor = await services(request).admin_tokens.authenticate(token)
    sudo = request.headers.get("Sudo") or request.query_params.get("sudo")
    if sudo:
        actor = await _sudo(request, actor, sudo)
    request.scope["conveyor.token_actor"] = actor
    return actor


async def _sudo(request: Request, actor: Actor, who: str) -> Actor:
    """``Sudo: <id or username>`` with an administrator's ``sudo``-scoped token: act as that user."""
    if not actor.admin:
        raise Forbidden("403 Forbidden - Must be admin to use sudo")
    if "sudo" not in actor.scopes:  # GitLab's API guard: validate_access_token!(scopes: [:sudo])
        raise InsufficientScope("sudo")
    try:
        user = await services(request).users.get(who)
    except NotFound:
        raise NotFound(f"404 User with ID or username '{who}' Not Found") from None
    if user["state"] != "active":
        raise Unauthorized("401 Unauthorized")
    return Actor(user_id=int(user["id"]), username=user["username"], admin=bool(user["admin"]), scopes=actor.scopes,
                 token_id=actor.token_id, name=user["name"], email=user["email"])  # fmt: skip


async def current_actor(request: Request) -> Actor:
    """The caller of the REST API: ``api`` scope, or ``read_api`` for GET and HEAD (else 403
    ``insufficient_scope``)."""
    actor = await token_actor(request)
    if request.method not in ("GET", "HEAD") and not actor.may_write():
        raise InsufficientScope("api")
    if not actor.may_read():
        raise InsufficientScope("api read_api")
    return actor


async def require_admin(request: Request) -> None:
    """The caller must be an administrator: 401 when unauthenticated, 403 otherwise."""
    if not (await current_actor(request)).admin:
        raise Forbidden("403 Forbidden")


def project_access(role: Role) -> Callable[[Request, str], Awaitable[Access]]:
    """A dependency: the ``{project}`` path parameter resolved, the caller holding ``role`` in it."""

    async def dependency(request: Request, project: str) -> Access:
        return await access_to(request, project, await current_actor(request), role)

    dependency.role = role  # type: ignore[attr-defined]  # what a route walk reads (tests)
    return dependency


async def access_to(request: Request, project: str, actor: Actor, role: Role) -> Access:
    """``actor`` holding ``role`` in ``project`` (an id, name or path): 404 unseen, 403 too low."""
    svc = services(request)
    row = await svc.projects.get(project)
    granted = await svc.members.role(actor, row)
    if granted < Role.GUEST:
        raise NotFound("404 Project Not Found")
    if granted < role:
        raise Forbidden("403 Forbidden")
    return Access(actor=actor, project=row, role=granted)


CurrentActor = Annotated[Actor, Depends(current_actor)]
Guest = Annotated[Access, Depends(project_access(Role.GUEST))]
Reporter = Annotated[Access, Depends(project_access(Role.REPORTER))]
Developer = Annotated[Access, Depends(project_access(Role.DEVELOPER))]
Maintainer = Annotated[Access, Depends(project_access(Role.MAINTAINER))]
Owner = Annotated[Access, Depends(project_access(Role.OWNER))]
