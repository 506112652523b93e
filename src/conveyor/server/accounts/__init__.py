"""Who and what the server knows: runners and admin tokens (hashed), projects, and the running
jobs whose tokens this process checked (forgotten on PostgreSQL's revocation NOTIFY).

May import ``server.db``, ``server.auth``, ``server.errors``, ``conveyor.protocol`` and ``asyncpg``
(the LISTEN connection of ``job_tokens``).
"""

from conveyor.server.accounts.job_tokens import JobTokenCache
from conveyor.server.accounts.projects import Projects
from conveyor.server.accounts.runners import Registered, RunnerContext, RunnerOptions, Runners
from conveyor.server.accounts.tokens import AdminTokens

__all__ = ["AdminTokens", "JobTokenCache", "Projects", "Registered", "RunnerContext", "RunnerOptions", "Runners"]
