"""Sealing finished jobs' logs (live chunks -> one verified object in the object store), and job
artifacts (streamed uploads, authorised downloads, expiry).

May import ``server.db``, ``server.storage``, ``server.trace``, ``conveyor.protocol``,
``conveyor.ciconfig`` (GitLab durations) and python-multipart.
"""

from conveyor.server.archive.artifacts import ArtifactService
from conveyor.server.archive.traces import TraceArchiver

__all__ = ["ArtifactService", "TraceArchiver"]
