"""Async query functions, one module per entity; each takes an open ``AsyncConnection``.

Callers own the transaction (``async with engine.begin()``) and keep it short: no network calls
and no waiting inside it.
"""

from conveyor.server.db.queries import (
    archives,
    artifacts,
    hooks,
    bridges,
    browse,
    deployments,
    jobs,
    members,
    overview,
    paging,
    pipelines,
    projects,
    pulse,
    removal,
    resource_groups,
    runner_scopes,
    runners,
    schedules,
    sources,
    tokens,
    users,
    traces,
    triggers,
    variables,
)

__all__ = ["archives", "artifacts", "bridges", "browse", "deployments", "hooks", "jobs", "members", "overview", "paging", "pipelines", "projects", "pulse", "removal", "resource_groups", "runner_scopes", "runners", "schedules", "sources", "tokens", "traces", "triggers", "users", "variables"]
