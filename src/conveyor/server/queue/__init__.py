"""Pipelines and the job queue: create pipelines from a commit's ``.gitlab-ci.yml``, advance them
stage by stage, hand pending jobs to runners (``FOR UPDATE SKIP LOCKED``), apply job updates, and
GitLab's job states around them: retries, manual and delayed jobs, cancel and auto-cancel,
resource groups (``progress``, ``retry``, ``actions``, ``schedule``, ``resources``, ``interrupt``).

May import ``server.periodic`` (background passes), ``conveyor.ciconfig``, ``conveyor.pipeline``, ``conveyor.protocol``, ``server.db``,
``server.sources`` and ``server.trace``. Every transaction is short; none nests.
"""

from conveyor.server.queue.dispatch import Dispatcher
from conveyor.server.queue.jobs import JobUpdates, UpdateOutcome
from conveyor.server.queue.pipelines import Pipelines

__all__ = ["Dispatcher", "JobUpdates", "Pipelines", "UpdateOutcome"]
