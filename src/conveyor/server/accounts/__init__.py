"""Who and what the server knows: runners and admin tokens (hashed), and projects.

May import ``server.db``, ``server.auth``, ``server.errors`` and ``conveyor.protocol``.
"""

from conveyor.server.accounts.projects import Projects
from conveyor.server.accounts.runners import Registered, RunnerContext, RunnerOptions, Runners
from conveyor.server.accounts.tokens import AdminTokens

__all__ = ["AdminTokens", "Projects", "Registered", "RunnerContext", "RunnerOptions", "Runners"]
