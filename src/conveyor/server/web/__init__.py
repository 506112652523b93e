"""The web UI: server-rendered pages (Jinja2 templates, static ES modules and CSS, no build step)
over the same services the API routers use, mounted at ``/-`` by ``server/app.py``.

May import ``server.api`` (its dependencies and handlers, so a page action and an API call are
one path), the services' packages (``queue``, ``accounts``, ``archive``, ``viewer``), ``server.keys``
and ``conveyor.protocol``; never ``server.db`` (no SQL here) or the runner.
"""

from conveyor.server.web import gitlab_urls
from conveyor.server.web.sessions import Sessions
from conveyor.server.web.site import create_site, warm

__all__ = ["Sessions", "create_site", "gitlab_urls", "warm"]
