"""CI/CD variables: instance and project variables kept encrypted at rest, GitLab's validation
rules, and their assembly into a job's variables by GitLab's precedence.

Owns ``crypto`` (the Fernet key ring every stored secret goes through), ``rules`` (what a
variable may be), ``service`` (the CRUD the API calls) and ``assembly`` (what a job receives).
May import ``conveyor.protocol``, ``server.db``, ``server.errors`` and ``server.settings``; never
the API, the queue or the runner.
"""

from conveyor.server.variables.assembly import JobVariables, user_variables
from conveyor.server.variables.crypto import SecretBox, SecretsKeyMissing
from conveyor.server.variables.service import Variables

__all__ = ["JobVariables", "SecretBox", "SecretsKeyMissing", "Variables", "user_variables"]
