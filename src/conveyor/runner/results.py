"""Typed results of the coordinator calls: what the rest of the runner sees instead of status codes.

The mapping from HTTP to these values lives in ``client.py`` and follows gitlab-runner
``network/gitlab.go`` (``createUpdateJobResult``, ``createPatchTraceResult``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

from conveyor.protocol.models import JobPayload, RegistrationDetails


class UpdateKind(StrEnum):
    SUCCEEDED = "succeeded"  # 200
    ACCEPTED = "accepted"  # 202: server still settling the trace; sleep and repeat
    ABORT = "abort"  # 403, 404, or Job-Status canceled/failed
    FAILED = "failed"  # anything else, including network errors
    RESET = "reset"  # 412: the server dropped the trace; resend it from offset 0


class PatchKind(StrEnum):
    ACCEPTED = "accepted"  # 202
    RANGE_MISMATCH = "range_mismatch"  # 416; resume from server_offset
    ABORT = "abort"  # 403 or Job-Status canceled/failed
    NOT_FOUND = "not_found"  # 404
    FAILED = "failed"  # anything else, including network errors; resend from the same offset


@dataclass(frozen=True)
class UpdateResult:
    kind: UpdateKind
    job_status: str | None = None
    update_interval: float | None = None
    cancel_requested: bool = False


@dataclass(frozen=True)
class PatchResult:
    kind: PatchKind
    server_offset: int | None = None
    job_status: str | None = None
    cancel_requested: bool = False
    update_interval: float | None = None


@dataclass(frozen=True)
class RejectedJob:
    """A 201 whose body did not decode; reported back as failed when id and token are readable."""

    job_id: int | None
    token: str | None
    error: str

    @classmethod
    def from_body(cls, content: bytes, error: str) -> RejectedJob:
        try:
            raw = json.loads(content)
        except ValueError:
            raw = None
        if not isinstance(raw, dict):
            return cls(None, None, error)
        job_id, token = raw.get("id"), raw.get("token")
        return cls(job_id if isinstance(job_id, int) else None, token if isinstance(token, str) else None, error)


@dataclass(frozen=True)
class JobRequestResult:
    job: JobPayload | None
    last_update: str | None
    healthy: bool = True
    rejected: RejectedJob | None = None
    error: str | None = None


@dataclass(frozen=True)
class VerifyResult:
    """``valid`` is False only when the coordinator rejected the token (403)."""

    valid: bool
    details: RegistrationDetails | None = None
    error: str | None = None


@dataclass(frozen=True)
class ArtifactResult:
    """An artifact upload or download: ``ok``, the last HTTP status (0: network error), why not."""

    ok: bool
    status: int
    error: str = ""
