"""Admin tokens (``glpat-``): the initial root token, and validation of ``PRIVATE-TOKEN``."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.server import auth
from conveyor.server.db import queries


class AdminTokens:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def ensure_root(self, initial: str | None) -> str | None:
        """Store ``initial`` if given; else create a root token if none exists.

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

    async def valid(self, token: str) -> bool:
        async with self._engine.connect() as conn:
            return await queries.tokens.exists(conn, auth.digest(token))
