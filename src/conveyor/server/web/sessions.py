"""Browser sessions: signed cookies naming a server-side session in Redis, and CSRF tokens.

A person signs in with a personal access token; the session keeps only the token's digest, and
every request authenticates it again (``render.signed_in``): a revoked or expired token, a token
without ``api``/``read_api``, or a blocked user ends the session. The
cookie holds a 256-bit random id and its HMAC; ``HttpOnly; SameSite=Lax; Path=/``, and
``Secure`` with the ``__Host-`` prefix over HTTPS. The CSRF token is an HMAC of the session id,
sent back in a hidden form field or the ``X-CSRF-Token`` header.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from redis.asyncio import Redis

from conveyor.server import auth, keys
from conveyor.server.accounts.access import Actor

COOKIE = "conveyor_session"
SECURE_COOKIE = "__Host-conveyor_session"
IDLE = 8 * 3600  # seconds a session lives without a request
SAFE_SITES = ("same-origin", "none")


@dataclass(frozen=True)
class Session:
    id: str
    digest: str  # of the personal access token that opened it
    csrf: str
    actor: Actor | None = None  # whom the token authenticates (set by ``render.signed_in``)


class Sessions:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._secret: bytes | None = None

    async def secret(self) -> bytes:
        if self._secret is None:
            await self._redis.set(keys.web_secret(), secrets.token_hex(32), nx=True)
            value = await self._redis.get(keys.web_secret())
            self._secret = value if isinstance(value, bytes) else str(value).encode()
        return self._secret

    async def open(self, token: str) -> str:
        """A new session for a token already checked valid; returns the cookie value."""
        session_id = secrets.token_urlsafe(32)
        await self._redis.hset(keys.web_session(session_id), mapping={"digest": auth.digest(token)})
        await self._redis.expire(keys.web_session(session_id), IDLE)
        return f"{session_id}.{await self._sign(session_id)}"

    async def get(self, cookie: str | None) -> Session | None:
        """The session a cookie names, if its signature holds and it has not expired."""
        if not cookie or "." not in cookie:
            return None
        session_id, signature = cookie.rsplit(".", 1)
        if not hmac.compare_digest(signature, await self._sign(session_id)):
            return None
        digest = await self._redis.hget(keys.web_session(session_id), "digest")
        if digest is None:
            return None
        await self._redis.expire(keys.web_session(session_id), IDLE)
        value = digest.decode() if isinstance(digest, bytes) else str(digest)
        return Session(session_id, value, await self._sign("csrf:" + session_id))

    async def close(self, session_id: str) -> None:
        await self._redis.delete(keys.web_session(session_id))

    async def flash(self, session_id: str, message: str) -> None:
        """A message for the next page this session shows (an action's error)."""
        await self._redis.hset(keys.web_session(session_id), "flash", message)

    async def take_flash(self, session_id: str) -> str | None:
        key = keys.web_session(session_id)
        message = await self._redis.hget(key, "flash")
        if message is None:
            return None
        await self._redis.hdel(key, "flash")
        return message.decode() if isinstance(message, bytes) else str(message)

    async def _sign(self, value: str) -> str:
        return hmac.new(await self.secret(), value.encode(), hashlib.sha256).hexdigest()


def cookie_name(secure: bool) -> str:
    return SECURE_COOKIE if secure else COOKIE


def same_origin(site: str | None, sent_origin: str | None, origin: str) -> bool:
    """Fetch Metadata and Origin checks for an unsafe request (OWASP's CSRF cheat sheet)."""
    if site is not None and site not in SAFE_SITES:
        return False
    return sent_origin is None or sent_origin == origin
