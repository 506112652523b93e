"""The docker executor: job stages in containers through the Docker Engine API.

``api.py`` is the HTTP client (unix socket or TCP with keepalives and TLS), ``pull.py`` the pull
policies, ``containers.py`` one container's life, ``services.py`` sidecars on a job network,
``executor.py`` the ``Executor``. Imports httpx, structlog, ``conveyor.protocol`` and the
runner's executors, settings and trace formatting; never the server.
"""

from conveyor.runner.executors.docker.api import DockerAPI, DockerError
from conveyor.runner.executors.docker.executor import DockerExecutor

__all__ = ["DockerAPI", "DockerError", "DockerExecutor"]
