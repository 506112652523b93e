"""Admin tokens (``glpat-``): the initial root token, and validation of ``PRIVATE-TOKEN``.

A verified token is trusted for ``cache_ttl`` seconds (setting ``admin_token_cache_ttl``) without
asking PostgreSQL again: every live-log viewer that attaches presents one, and 1,000 viewers
attaching were 1,000 pooled connection checkouts. So a token deleted from ``tokens`` is refused at
most ``cache_ttl`` seconds later by every server process. Only successes are remembered: an
unknown token always asks PostgreSQL, so a new token works at once. 0 turns the cache off.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from sqlalchemy.ext.asyncio import AsyncEngine

from conveyor.server import auth
from conveyor.server.db import queries, single_statements

MAX_REMEMBERED = 1024  # distinct verified tokens kept per process; the oldest go first


class AdminTokens:
    def __init__(self, engine: AsyncEngine, *, cache_ttl: float = 10.0) -> None:
        self._engine = engine
        self._reads = single_statements(engine)
        self.cache_ttl = cache_ttl
        self._verified: OrderedDict[str, float] = OrderedDict()  # digest -> trusted until (monotonic)

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
        return await self.valid_digest(auth.digest(token))

    async def valid_digest(self, digest: str) -> bool:
        """``valid`` for a token known only by its digest (a web session keeps no token)."""
        now = time.monotonic()
        until = self._verified.get(digest)
        if until is not None and now < until:
            return True
        self._verified.pop(digest, None)
        async with self._reads.connect() as conn:
            known = await queries.tokens.exists(conn, digest)
        if known and self.cache_ttl > 0:
            self._verified[digest] = now + self.cache_ttl
            while len(self._verified) > MAX_REMEMBERED:
                self._verified.popitem(last=False)
        return known
