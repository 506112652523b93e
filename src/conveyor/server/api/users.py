"""People over GitLab's REST API: ``/user``, ``/users`` (administrators create, block and unblock),
personal access tokens (``/personal_access_tokens``, ``/users/:id/personal_access_tokens``),
``/version`` and ``/metadata``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.engine import RowMapping

from conveyor import __version__
from conveyor.server.accounts.access import Actor
from conveyor.server.accounts.tokens import parse_scopes
from conveyor.server.api import params
from conveyor.server.api.deps import CurrentActor, current_actor, require_admin, services, token_actor
from conveyor.server.errors import BadRequest, NotFound, ParamError, Unauthorized

router = APIRouter(prefix="/api/v4")
GITLAB_VERSION = "17.11.0"  # what clients compare against; Conveyor's own is in "revision"


def timestamp(value: datetime | None) -> str | None:
    """GitLab's JSON time: ``2027-01-01T00:00:00.000Z``."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z") if value else None


def basic_user(request: Request, row: RowMapping) -> dict[str, Any]:
    """GitLab's nested user: ``{id, username, name, state, locked, avatar_url, web_url}``."""
    return {
        "id": row["id"], "username": row["username"], "name": row["name"], "state": row["state"], "locked": False,
        "avatar_url": None, "web_url": f"{services(request).settings.base_url.rstrip('/')}/{row['username']}",
    }  # fmt: skip


def _user(request: Request, row: RowMapping, viewer: Actor) -> dict[str, Any]:
    user = basic_user(request, row)
    user.update(
        created_at=timestamp(row["created_at"]), bio="", public_email=None, bot=False, is_admin=bool(row["admin"]),
        can_create_project=True, can_create_group=True, two_factor_enabled=False, external=False,
        last_activity_on=None, last_sign_in_at=None,
    )  # fmt: skip
    if viewer.admin or viewer.user_id == row["id"]:
        user["email"] = row["email"]
    return user


def _token(row: RowMapping, token: str | None = None) -> dict[str, Any]:
    expires = row["expires_at"]
    active = not row["revoked"] and (expires is None or expires > datetime.now(UTC).date())
    body = {
        "id": row["id"], "name": row["name"], "description": row["description"], "revoked": row["revoked"],
        "created_at": timestamp(row["created_at"]), "last_used_at": timestamp(row["last_used_at"]),
        "scopes": row["scopes"].split(), "user_id": row["user_id"], "active": active,
        "expires_at": expires.isoformat() if expires else None,
    }  # fmt: skip
    if token is not None:
        body["token"] = token
    return body


def _meta() -> dict[str, Any]:
    return {
        "version": GITLAB_VERSION, "revision": f"conveyor-{__version__}",
        "kas": {"enabled": False, "externalUrl": None, "version": None}, "enterprise": False,
    }  # fmt: skip


@router.get("/version")
async def version(actor: Actor = Depends(token_actor)) -> dict[str, Any]:
    return _meta()


@router.get("/metadata")
async def metadata(actor: Actor = Depends(token_actor)) -> dict[str, Any]:
    return _meta()


@router.get("/user")
async def current_user(request: Request, actor: Actor = Depends(token_actor)) -> dict[str, Any]:
    """The caller (``gl.auth()``); ``read_user`` suffices."""
    return _user(request, await services(request).users.get(actor.user_id or 0), actor)


@router.get("/users")
async def list_users(request: Request, actor: CurrentActor) -> list[dict[str, Any]]:
    given = await params.read(request)
    state = None
    if params.boolean(given, "active"):
        state = "active"
    if params.boolean(given, "blocked"):
        state = "blocked"
    found = await services(request).users.search(username=params.text(given, "username"), text=params.text(given, "search"), state=state)
    return [_user(request, row, actor) for row in found]


@router.get("/users/{user_id}")
async def get_user(request: Request, user_id: int, actor: CurrentActor) -> dict[str, Any]:
    return _user(request, await services(request).users.get(user_id), actor)


@router.post("/users", status_code=201, dependencies=[Depends(require_admin)])
async def create_user(request: Request, actor: CurrentActor) -> dict[str, Any]:
    given = await params.read(request)
    missing = [n for n in ("email", "username", "name") if not given.get(n)]
    if missing:
        raise ParamError(", ".join(f"{name} is missing" for name in missing))
    user = await services(request).users.create(
        str(given["username"]), str(given["name"]), str(given["email"]), bool(params.boolean(given, "admin", False))
    )
    return _user(request, user, actor)


@router.put("/users/{user_id}", dependencies=[Depends(require_admin)])
async def update_user(request: Request, user_id: int, actor: CurrentActor) -> dict[str, Any]:
    """An administrator changes ``name``, ``email`` or ``admin``; the rest is ignored."""
    given = await params.read(request)
    changes: dict[str, object] = {name: params.text(given, name) for name in ("name", "email") if given.get(name)}
    if "admin" in given:
        changes["admin"] = params.boolean(given, "admin")
    return _user(request, await services(request).users.update(user_id, changes), actor)


@router.post("/users/{user_id}/block", status_code=201, dependencies=[Depends(require_admin)])
async def block_user(request: Request, user_id: int) -> bool:
    await services(request).users.set_blocked(user_id, True)
    return True


@router.post("/users/{user_id}/unblock", status_code=201, dependencies=[Depends(require_admin)])
async def unblock_user(request: Request, user_id: int) -> bool:
    await services(request).users.set_blocked(user_id, False)
    return True


@router.post("/users/{user_id}/personal_access_tokens", status_code=201, dependencies=[Depends(require_admin)])
async def create_token(request: Request, user_id: int) -> dict[str, Any]:
    """A token for the user (``name``, ``scopes``, ``expires_at``); the token is in this answer only."""
    given = await params.read(request)
    name = params.text(given, "name", required=True) or ""
    if "scopes" not in given:
        raise ParamError("scopes is missing")
    scopes = parse_scopes(given["scopes"])
    expires = params.day(given, "expires_at")
    row, token = await services(request).admin_tokens.create(user_id, name, scopes, expires, params.text(given, "description"))
    return _token(row, token)


@router.get("/personal_access_tokens")
async def list_tokens(request: Request, actor: CurrentActor) -> list[dict[str, Any]]:
    """The caller's tokens; an administrator's ``user_id`` (or all); another's for a non-admin: 401."""
    given = await params.read(request)
    user_id = given.get("user_id")
    if user_id is not None and not str(user_id).isdigit():
        raise ParamError("user_id is invalid")
    if user_id is not None and not actor.admin and int(user_id) != actor.user_id:
        raise Unauthorized("401 Unauthorized")
    owner = int(user_id) if user_id is not None else (None if actor.admin else actor.user_id)
    rows = await services(request).admin_tokens.list(owner, params.boolean(given, "revoked"))
    state = params.choice(given, "state", ("active", "inactive"))
    found = [_token(r) for r in rows]
    return [t for t in found if state is None or t["active"] == (state == "active")]


async def _own_token(request: Request, token_id: str, actor: Actor) -> RowMapping:
    """``self`` or an id: another user's token is 401 for a non-admin, as GitLab answers."""
    key = actor.token_id if token_id == "self" else int(token_id) if token_id.isdigit() else None
    row = await services(request).admin_tokens.get(key) if key is not None else None
    if row is not None and not actor.admin and row["user_id"] != actor.user_id:
        raise Unauthorized("401 Unauthorized")
    if row is None:
        raise NotFound("404 Not Found")
    return row


@router.get("/personal_access_tokens/{token_id}")
async def get_token(request: Request, token_id: str, actor: Actor = Depends(token_actor)) -> dict[str, Any]:
    return _token(await _own_token(request, token_id, actor))


@router.delete("/personal_access_tokens/{token_id}", status_code=204)
async def revoke_token(request: Request, token_id: str, actor: Actor = Depends(token_actor)) -> Response:
    """Revoke a token (``self``: the calling one); 400 when it was already revoked."""
    if token_id != "self":
        await current_actor(request)  # revoking another token needs the api scope
    row = await _own_token(request, token_id, actor)
    if await services(request).admin_tokens.revoke(int(row["id"])) is None:
        raise BadRequest("400 Bad request - the token is already revoked")
    return Response(status_code=204)


@router.post("/personal_access_tokens/{token_id}/rotate", status_code=200)
async def rotate_token(request: Request, token_id: str, actor: CurrentActor) -> dict[str, Any]:
    """Revoke the token and return its successor (200, as GitLab)."""
    row = await _own_token(request, token_id, actor)
    given = await params.read(request)
    new, token = await services(request).admin_tokens.rotate(int(row["id"]), params.day(given, "expires_at"))
    return _token(new, token)
