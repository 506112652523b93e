"""Thin HTTP routers: parse, authenticate, call a service, shape the answer. No SQL, no Redis.

May import the server's services (``queue``, ``trace``, ``archive``), ``server.errors`` and
``conveyor.protocol``; services come from the app's lifespan state (``deps.services``).
"""

from conveyor.server.api import errors, health, projects, runner_v4

__all__ = ["errors", "health", "projects", "runner_v4"]
