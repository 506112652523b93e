"""Pipelines that start themselves: trigger tokens, push webhooks from forges, polling of
repositories, cron schedules, and webhooks sent out on pipeline and job events.

Each is a service over ``server.db`` that ends in ``queue.Pipelines.create`` with an ``Origin``
(the pipeline's source and pushed range). May import ``server.periodic`` (background passes), ``conveyor.protocol``, ``server.db``,
``server.queue``, ``server.sources``, ``server.variables``, ``server.auth`` and ``server.errors``;
never the API or the runner.
"""

from conveyor.server.automation.hooks import HookDeliverer, Hooks
from conveyor.server.automation.polling import Poller
from conveyor.server.automation.pushes import PushReceiver
from conveyor.server.automation.schedules import ScheduleFirer, Schedules
from conveyor.server.automation.triggers import Triggers

__all__ = ["HookDeliverer", "Hooks", "Poller", "PushReceiver", "ScheduleFirer", "Schedules", "Triggers"]
