"""Every Redis key Conveyor uses, under one ``conveyor:`` prefix (arq ``constants.py`` style)."""

PREFIX = "conveyor:"


def queue_version() -> str:
    """Opaque value changed whenever a job becomes pending: the runners' X-GitLab-Last-Update."""
    return PREFIX + "queue:version"


def queue_channel() -> str:
    """Pub/sub channel carrying each new queue version to every server process."""
    return PREFIX + "queue:ticks"


def archive_lease(job_id: int) -> str:
    """Held (SET NX EX) by the one server process archiving this job's log."""
    return f"{PREFIX}trace:{job_id}:archiving"
