"""Thin HTTP routers: parse, authenticate, call a service, shape the answer. No SQL, no Redis.

May import the server's services (``queue``, ``trace``, ``archive``, ``viewer``), ``server.errors`` and
``conveyor.protocol``; services come from the app's lifespan state (``deps.services``).
"""

from conveyor.server.api import (
    artifacts,
    bench,
    current_job,
    errors,
    health,
    hooks,
    limits,
    members,
    job_artifacts,
    jobs,
    openapi,
    pagination,
    pipelines,
    presenters,
    params,
    projects,
    pushes,
    registration,
    repository,
    runner_v4,
    runners_admin,
    schedules,
    triggers,
    users,
    variables,
    viewer,
)

__all__ = ["artifacts", "bench", "current_job", "errors", "health", "projects", "registration", "runner_v4", "params", "variables", "triggers", "schedules", "hooks", "pushes", "viewer", "limits", "members", "users", "job_artifacts", "jobs", "openapi", "pagination", "pipelines", "presenters", "repository", "runners_admin"]
