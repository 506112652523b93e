"""Who and what the server knows: users, their personal access tokens (hashed), namespaces and
memberships (roles), runners, projects, and the running
jobs whose tokens this process checked (forgotten on PostgreSQL's revocation NOTIFY).

May import ``server.db``, ``server.auth``, ``server.errors``, ``conveyor.protocol`` and ``asyncpg``
(the LISTEN connection of ``job_tokens``).
"""

from conveyor.server.accounts.job_tokens import JobTokenCache
from conveyor.server.accounts.members import Members
from conveyor.server.accounts.projects import Projects
from conveyor.server.accounts.runner_scopes import RunnerScopes
from conveyor.server.accounts.runners import Registered, RunnerContext, RunnerOptions, Runners
from conveyor.server.accounts.tokens import AdminTokens
from conveyor.server.accounts.users import Users

__all__ = [
    "AdminTokens", "JobTokenCache", "Members", "Projects", "Registered", "RunnerContext", "RunnerOptions", "RunnerScopes", "Runners", "Users",
]
