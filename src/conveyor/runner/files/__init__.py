"""Job files the runner moves itself: artifacts to and from the coordinator, the local cache.

``archive.py`` selects files and writes/extracts zips safely; ``artifacts.py`` and ``cache.py``
are the stages. Imports the standard library, ``conveyor.protocol`` and the runner's client and
trace formatting.
"""

from conveyor.runner.files import archive, artifacts, cache

__all__ = ["archive", "artifacts", "cache"]
