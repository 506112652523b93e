"""Users and groups: create (with the user's own namespace), list, block and unblock; groups are
namespaces of kind ``group`` whose creator becomes their owner."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.server.accounts.access import Actor, Role
from conveyor.server.accounts.tokens import AdminTokens
from conveyor.server.db import queries
from conveyor.server.errors import BadRequest, Conflict, Invalid, NotFound

_PATH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class Users:
    def __init__(self, engine: AsyncEngine, tokens: AdminTokens) -> None:
        self._engine = engine
        self._tokens = tokens

    async def create(self, username: str, name: str, email: str | None, admin: bool = False) -> RowMapping:
        """A user and its namespace (path = username); 409 in GitLab's words when taken."""
        if not _PATH.match(username):
            raise Invalid({"username": ["can contain only letters, digits, '_', '-' and '.'"]})
        async with self._engine.begin() as conn:
            if (reason := await queries.users.taken(conn, username, email)) is not None:
                raise Conflict(reason)
            user = await queries.users.insert(conn, username, name, email, admin)
            if user is None:
                raise Conflict("Username has already been taken")
            if await queries.users.insert_namespace(conn, name, username, "user", int(user["id"])) is None:
                raise Conflict("Username has already been taken")  # a group holds that path
        return user

    async def get(self, id_or_username: int | str) -> RowMapping:
        async with self._engine.connect() as conn:
            if isinstance(id_or_username, int) or id_or_username.isdigit():
                user = await queries.users.get(conn, int(id_or_username))
            else:
                user = await queries.users.by_username(conn, id_or_username)
        if user is None:
            raise NotFound("404 User Not Found")
        return user

    async def starter(self, actor: Actor) -> dict[str, Any] | None:
        """Who a pipeline records as starting it (``{id, login, name, email}`` like
        ``queue.predefined.ROOT_USER``: the
        ``GITLAB_USER_*`` variables and the API's ``user``); None for a caller without a user."""
        if actor.user_id is None:
            return None
        if actor.name is not None:  # read with the token: no second read of the user row
            return {"id": actor.user_id, "login": actor.username, "name": actor.name, "email": actor.email}
        user = await self.get(actor.user_id)
        return {"id": int(user["id"]), "login": user["username"], "name": user["name"], "email": user["email"]}

    async def search(self, *, username: str | None = None, text: str | None = None, state: str | None = None) -> list[RowMapping]:
        async with self._engine.connect() as conn:
            return await queries.users.search(conn, username=username, text=text, state=state)

    async def update(self, user_id: int, changes: dict[str, object]) -> RowMapping:
        """An administrator edits ``name``, ``email`` or ``admin`` (root stays an administrator)."""
        if user_id == 1 and changes.get("admin") is False:
            raise BadRequest("400 Bad request - the root user stays an administrator")
        async with self._engine.begin() as conn:
            email = changes.get("email")
            if isinstance(email, str) and (other := await queries.users.taken(conn, "", email)) is not None:
                current = await queries.users.get(conn, user_id)
                if current is None or (current["email"] or "").lower() != email.lower():
                    raise Conflict(other)
            user = await queries.users.update(conn, user_id, changes) if changes else await queries.users.get(conn, user_id)
        if user is None:
            raise NotFound("404 User Not Found")
        self._tokens.forget(user_id=user_id)  # ``admin`` may have changed
        return user

    async def set_blocked(self, user_id: int, blocked: bool) -> RowMapping:
        """Block (every token of the user is refused at once here) or unblock; root stays active."""
        if user_id == 1 and blocked:
            raise BadRequest("400 Bad request - the root user cannot be blocked")
        async with self._engine.begin() as conn:
            user = await queries.users.set_state(conn, user_id, "blocked" if blocked else "active")
        if user is None:
            raise NotFound("404 User Not Found")
        self._tokens.forget(user_id=user_id)
        return user

    async def create_group(self, name: str, path: str, creator: int, description: str = "") -> RowMapping:
        if not _PATH.match(path):
            raise Invalid({"path": ["can contain only letters, digits, '_', '-' and '.'"]})
        async with self._engine.begin() as conn:
            group = await queries.users.insert_namespace(conn, name, path, "group", None)
            if group is None:
                raise Invalid({"path": ["has already been taken"]})
            await queries.members.upsert_group(conn, int(group["id"]), creator, int(Role.OWNER), None, update=False)
        return group

    async def namespace(self, id_or_path: str, kind: str | None = None) -> RowMapping:
        id_or_path = unquote(id_or_path)
        key: int | str = int(id_or_path) if id_or_path.isdigit() else id_or_path
        async with self._engine.connect() as conn:
            found = await queries.users.namespace(conn, key)
        if found is None or (kind is not None and found["kind"] != kind):
            raise NotFound("404 Group Not Found" if kind == "group" else "404 Namespace Not Found")
        return found

    async def namespaces(self, kind: str | None, user_id: int | None, search: str | None = None) -> list[RowMapping]:
        async with self._engine.connect() as conn:
            return await queries.users.namespaces_of(conn, kind, user_id, search)
