"""Every Redis key Conveyor uses, under one ``conveyor:`` prefix (arq ``constants.py`` style)."""

PREFIX = "conveyor:"


def queue_version() -> str:
    """Opaque value changed whenever a job becomes pending: the runners' X-GitLab-Last-Update."""
    return PREFIX + "queue:version"
