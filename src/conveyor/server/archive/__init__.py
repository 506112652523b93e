"""Sealing finished jobs' logs (live chunks -> one verified object in the object store), and job
artifacts (streamed uploads, authorised downloads, expiry).

May import ``server.periodic`` (background passes), ``server.db``, ``server.storage``, ``server.trace``, ``conveyor.protocol``,
``conveyor.ciconfig`` (GitLab durations), python-multipart, redis-py (the archive lease) and
prometheus-client.
"""

from conveyor.server.archive.artifacts import ArtifactService
from conveyor.server.archive.digest import ArchiveMismatch
from conveyor.server.archive.traces import RetryPolicy, TraceArchiver

__all__ = ["ArchiveMismatch", "ArtifactService", "RetryPolicy", "TraceArchiver"]
