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


def trace_meta(job_id: int) -> str:
    """Hash of a live log in Redis: ``size`` and ``crc`` (CRC-32 of bytes 0..size), ``sealed``."""
    return f"{PREFIX}trace:{{{job_id}}}:meta"


def trace_chunk(job_id: int, index: int) -> str:
    """One hot 128 KiB chunk of a live log (the same hash tag as its meta: one Lua call)."""
    return f"{PREFIX}trace:{{{job_id}}}:chunk:{index}"


def trace_overflow(job_id: int) -> str:
    """A log past its size limit: ``logical`` (the runner's size) and ``tail`` (its last bytes)."""
    return f"{PREFIX}trace:{{{job_id}}}:overflow"


def trace_channel() -> str:
    """Pub/sub channel: ``{job_id, size}`` after every append, ``{job_id, end}`` when a job ends."""
    return PREFIX + "trace:appended"


def trace_watched(job_id: int) -> str:
    """Set (TTL 10 s, refreshed) while someone follows the job's log live (GitLab's ``:watched``)."""
    return f"{PREFIX}trace:{job_id}:watched"


def web_secret() -> str:
    """The key that signs web session cookies and CSRF tokens (SET NX once, shared by every process)."""
    return PREFIX + "web:secret"


def web_session(session_id: str) -> str:
    """Hash of one signed-in browser: ``digest`` (of its personal access token), ``flash``."""
    return f"{PREFIX}web:session:{session_id}"
