"""Who is calling and what they may do: GitLab's access levels and the caller of a request.

This is the shape every router uses; users, personal access tokens (``tokens.py``) and
memberships (``members.py``) stand behind it:

- ``Role``: GitLab's project access levels, with GitLab's numbers (``access_level`` in its API).
- ``Actor``: the authenticated caller: a user id and name, admin or not, the token's scopes.
- ``Access``: an actor's role in one project, and the project row.

Routers depend on ``api.deps.project_access(Role.X)`` (read: 404 when the caller may not see the
project, 403 when it may see but not act) and ``api.deps.current_actor``; services never look
at HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from sqlalchemy.engine import RowMapping


class Role(IntEnum):
    """GitLab's ``access_level`` values (``Gitlab::Access``)."""

    NO_ACCESS = 0
    MINIMAL = 5
    GUEST = 10
    PLANNER = 15
    REPORTER = 20
    DEVELOPER = 30
    MAINTAINER = 40
    OWNER = 50


# Personal access token scopes that may call the REST API at all, and the read-only one.
API_SCOPES = frozenset({"api", "read_api"})
WRITE_SCOPE = "api"
# every scope GitLab knows (stored as given); Conveyor enforces api, read_api, read_user, create_runner
KNOWN_SCOPES = (
    "api", "read_api", "read_user", "create_runner", "manage_runner", "k8s_proxy", "read_repository",
    "write_repository", "read_registry", "write_registry", "read_virtual_registry", "write_virtual_registry",
    "sudo", "admin_mode", "ai_features", "read_service_ping", "self_rotate",
)


@dataclass(frozen=True)
class Actor:
    """The authenticated caller of one request."""

    user_id: int | None
    username: str
    admin: bool = False
    scopes: frozenset[str] = field(default_factory=lambda: frozenset({"api"}))
    token_id: int | None = None  # the personal access token the request came with
    # the user's name and email as read with the token (None: not read; ``Users.starter`` reads them)
    name: str | None = None
    email: str | None = None

    def may_write(self) -> bool:
        return WRITE_SCOPE in self.scopes

    def may_read(self) -> bool:
        return bool(API_SCOPES & self.scopes)


ROOT = Actor(user_id=1, username="root", admin=True)


@dataclass(frozen=True)
class Access:
    """``actor``'s ``role`` in ``project`` (an admin is an owner everywhere, as in GitLab)."""

    actor: Actor
    project: RowMapping
    role: Role

    @property
    def project_id(self) -> int:
        return int(self.project["id"])

    def may_act(self, role: Role = Role.DEVELOPER) -> bool:
        """Holding ``role`` with a token that may write (``api``; ``read_api`` only reads)."""
        return self.role >= role and self.actor.may_write()
