"""Personal access tokens (``glpat-``): the initial root token, creation, revocation, rotation,
and the authentication of ``PRIVATE-TOKEN`` / ``Authorization: Bearer``.

A verified token is trusted for ``cache_ttl`` seconds (setting ``admin_token_cache_ttl``) without
asking PostgreSQL again: every live-log viewer that attaches presents one, and 1,000 viewers
attaching were 1,000 pooled connection checkouts. A token revoked (or its user blocked) through
this process is forgotten at once; another server process refuses it at most ``cache_ttl``
seconds later. Only successes are remembered: an unknown token always asks PostgreSQL, so a new
token works at once. 0 turns the cache off.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.server import auth
from conveyor.server.accounts.access import KNOWN_SCOPES, Actor
from conveyor.server.db import queries, single_statements
from conveyor.server.errors import BadRequest, NotFound, ParamError, TokenRejected, Unauthorized

MAX_REMEMBERED = 1024  # distinct verified tokens kept per process; the oldest go first
LAST_USED_GRANULARITY = timedelta(minutes=10)  # last_used_at is refreshed at most this often
EXPIRED = "Token is expired. You can either do re-authorization or token refresh."
REVOKED = "Token was revoked. You have to re-authorize from the user."


def today() -> date:
    return datetime.now(UTC).date()


def parse_scopes(value: object) -> str:
    """``scopes`` as an array or CSV of GitLab's scope names, stored space-separated."""
    items = value if isinstance(value, list) else str(value or "").split(",")
    scopes = [str(s).strip() for s in items if str(s).strip()]
    if not scopes or any(s not in KNOWN_SCOPES for s in scopes):
        raise ParamError("scopes does not have a valid value")
    return " ".join(dict.fromkeys(scopes))


class AdminTokens:
    """Every user's personal access tokens (the name stays: the root token was the first)."""

    def __init__(self, engine: AsyncEngine, *, cache_ttl: float = 10.0) -> None:
        self._engine = engine
        self._reads = single_statements(engine)
        self.cache_ttl = cache_ttl
        self._verified: OrderedDict[str, tuple[Actor, date | None, float]] = OrderedDict()

    async def ensure_root(self, initial: str | None) -> str | None:
        """Store ``initial`` as root's token if given; else create one if root has none.

        Returns a token only when one was generated now: the caller prints it once.
        """
        async with self._engine.begin() as conn:
            if initial:
                await queries.tokens.insert(conn, "root", auth.digest(initial))
                return None
            if await queries.tokens.count(conn):
                return None
            token = auth.generate(auth.ADMIN_PREFIX)
            await queries.tokens.insert(conn, "root", auth.digest(token))
            return token

    async def authenticate(self, token: str) -> Actor:
        return await self.authenticate_digest(auth.digest(token))

    async def authenticate_digest(self, digest: str) -> Actor:
        """The token's user as an ``Actor``; 401 for an unknown, revoked or expired token or a
        blocked user (GitLab's bodies: ``401 Unauthorized``, or ``invalid_token`` with a reason)."""
        now = time.monotonic()
        cached = self._verified.get(digest)
        if cached is not None and now < cached[2] and not _expired(cached[1]):
            return cached[0]
        self._verified.pop(digest, None)
        async with self._reads.connect() as conn:
            row = await queries.tokens.lookup(conn, digest)
        if row is None or row["state"] != "active":
            raise Unauthorized("401 Unauthorized")
        if row["revoked"]:
            raise TokenRejected(REVOKED)
        if _expired(row["expires_at"]):
            raise TokenRejected(EXPIRED)
        used = row["last_used_at"]
        if used is None or used < datetime.now(UTC) - LAST_USED_GRANULARITY:  # as GitLab: not on every call
            async with self._engine.begin() as conn:
                await queries.tokens.touch(conn, int(row["id"]))
        actor = Actor(
            user_id=int(row["user_id"]), username=row["username"], admin=bool(row["admin"]),
            scopes=frozenset(row["scopes"].split()), token_id=int(row["id"]), name=row["user_name"], email=row["email"],
        )  # fmt: skip
        if self.cache_ttl > 0:
            self._verified[digest] = (actor, row["expires_at"], now + self.cache_ttl)
            while len(self._verified) > MAX_REMEMBERED:
                self._verified.popitem(last=False)
        return actor

    async def valid(self, token: str) -> bool:
        return await self.valid_digest(auth.digest(token))

    async def valid_digest(self, digest: str) -> bool:
        """An active administrator's usable token."""
        try:
            return (await self.authenticate_digest(digest)).admin
        except Unauthorized:
            return False

    def forget(self, *, token_id: int | None = None, user_id: int | None = None) -> None:
        """Drop remembered successes of a token or of every token of a user (revoked, blocked)."""
        for digest, (actor, _expires, _until) in list(self._verified.items()):
            if actor.token_id == token_id or actor.user_id == user_id:
                self._verified.pop(digest, None)

    async def create(
        self, user_id: int, name: str, scopes: str, expires_at: date | None, description: str | None = None
    ) -> tuple[RowMapping, str]:
        """A new token for the user: its row and the token itself (shown this once)."""
        if expires_at is not None and expires_at < today():
            raise BadRequest("400 Bad request - expires_at must be in the future")
        token = auth.generate(auth.ADMIN_PREFIX)
        async with self._engine.begin() as conn:
            if await queries.users.get(conn, user_id) is None:
                raise NotFound("404 User Not Found")
            row = await queries.tokens.insert(
                conn, name, auth.digest(token), user_id=user_id, scopes=scopes, expires_at=expires_at, description=description
            )
        assert row is not None  # 32 random bytes do not collide
        return row, token

    async def get(self, token_id: int) -> RowMapping | None:
        async with self._engine.connect() as conn:
            return await queries.tokens.get(conn, token_id)

    async def list(self, user_id: int | None, revoked: bool | None = None) -> list[RowMapping]:
        async with self._engine.connect() as conn:
            return await queries.tokens.of_user(conn, user_id, revoked)

    async def revoke(self, token_id: int) -> RowMapping | None:
        """Revoke; None when there was no active token with that id."""
        async with self._engine.begin() as conn:
            row = await queries.tokens.revoke(conn, token_id)
        self.forget(token_id=token_id)
        return row

    async def rotate(self, token_id: int, expires_at: date | None) -> tuple[RowMapping, str]:
        """Revoke the token and issue its successor (same name and scopes; a week by default)."""
        old = await self.revoke(token_id)
        if old is None:
            raise BadRequest("400 Bad request - the token is revoked or does not exist")
        expires = expires_at or today() + timedelta(days=7)
        return await self.create(int(old["user_id"]), old["name"], old["scopes"], expires, old["description"])


def _expired(expires_at: date | None) -> bool:
    return expires_at is not None and expires_at <= today()
