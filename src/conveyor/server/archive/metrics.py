"""Prometheus counters of the log archiver, in the server's registry (or a private one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

# why an attempt did not archive: the store or the live store raised ("error"), the object did
# not verify ("mismatch"), the runner's checksum disagrees with the stored bytes ("checksum")
REASONS = ("error", "mismatch", "checksum")


class ArchiveMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.failures = Counter(
            "conveyor_trace_archive_failures", "Log archive attempts that failed, by reason", ["reason"], registry=registry
        )
        for reason in REASONS:
            self.failures.labels(reason)  # exported as 0 from the start
        self.archived = Counter("conveyor_trace_archived", "Job logs archived and verified", registry=registry)
        self.archived_bytes = Counter("conveyor_trace_archived_bytes", "Bytes of job logs archived", registry=registry)
        self.total_failures = 0  # this process's attempts that failed, for logs and tests

    def failed(self, reason: str) -> None:
        self.failures.labels(reason).inc()
        self.total_failures += 1
