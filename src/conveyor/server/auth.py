"""Tokens: generated with a GitLab prefix, shown once, stored only as SHA-256 hashes.

The tokens are 32 random bytes, so a fast hash is the right tool (GitLab stores token digests
the same way); there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

RUNNER_PREFIX = "glrt-"
JOB_PREFIX = "glcbt-"
TRIGGER_PREFIX = "glptt-"
ADMIN_PREFIX = "glpat-"


def generate(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def matches(given: str, expected: str) -> bool:
    """Compare a presented shared secret in constant time."""
    return hmac.compare_digest(given.encode(), expected.encode())
