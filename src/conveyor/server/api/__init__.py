"""Thin HTTP routers: parse, authenticate, call a service, shape the answer. No SQL, no Redis.

May import the server's services (``queue``, ``trace``, ``archive``, ``viewer``), ``server.errors`` and
``conveyor.protocol``; services come from the app's lifespan state (``deps.services``).
"""

from conveyor.server.api import (
    artifacts,
    bench,
    errors,
    health,
    hooks,
    limits,
    members,
    params,
    projects,
    pushes,
    registration,
    runner_v4,
    schedules,
    triggers,
    users,
    variables,
    viewer,
)

__all__ = ["artifacts", "bench", "errors", "health", "projects", "registration", "runner_v4", "params", "variables", "triggers", "schedules", "hooks", "pushes", "viewer", "limits", "members", "users"]
