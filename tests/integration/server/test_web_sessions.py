"""Web sessions on a real Redis: signed cookies, tampering, sign-out, flash messages, CSRF tokens."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from conveyor.server import auth
from conveyor.server.web.sessions import Sessions, same_origin

pytestmark = pytest.mark.integration


async def test_cookie_names_a_session_only_with_its_signature(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    sessions = Sessions(redis)
    cookie = await sessions.open("glpat-secret")
    session = await sessions.get(cookie)
    assert session is not None and session.digest == auth.digest("glpat-secret")
    assert "glpat-secret" not in str(await redis.hgetall(f"conveyor:web:session:{session.id}"))  # only the digest
    session_id, signature = cookie.rsplit(".", 1)
    assert await sessions.get(f"{session_id}.{'0' * len(signature)}") is None
    assert await sessions.get(f"{session_id[:-1]}x.{signature}") is None
    assert await sessions.get(session_id) is None and await sessions.get(None) is None

    # a second process (same Redis) accepts the cookie: the signing key is shared
    second = Redis.from_url(redis_url)
    again = await Sessions(second).get(cookie)
    await second.aclose()
    assert again is not None and again.csrf == session.csrf and len(session.csrf) == 64
    assert session.csrf != (await sessions.get(await sessions.open("glpat-secret"))).csrf  # per session

    await sessions.flash(session.id, "403 Forbidden - Job is not retryable")
    assert await sessions.take_flash(session.id) == "403 Forbidden - Job is not retryable"
    assert await sessions.take_flash(session.id) is None
    await sessions.close(session.id)
    assert await sessions.get(cookie) is None
    await redis.aclose()


def test_same_origin_rules() -> None:
    origin = "http://127.0.0.1:8080"
    assert same_origin(None, None, origin)  # a client without Fetch Metadata or Origin (curl with the token)
    assert same_origin("same-origin", origin, origin)
    assert not same_origin("cross-site", None, origin)
    assert not same_origin("same-site", origin, origin)
    assert not same_origin(None, "https://evil.example", origin)
    assert not same_origin("same-origin", "null", origin)
