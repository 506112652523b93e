"""Prometheus metrics of one server process, in a registry of its own (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from conveyor.server.db import StatementObserver


class Metrics:
    def __init__(self, observer: StatementObserver) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_ObserverCounters(observer))
        durations = Histogram(
            "conveyor_db_transaction_duration_seconds", "Length of each transaction, first statement to commit or rollback",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=self.registry,
        )
        observer.add_transaction_listener(lambda duration, _record: durations.observe(duration))
        self.live_viewers = Gauge(
            "conveyor_trace_live_viewers", "Live log tails (SSE) open on this process", registry=self.registry
        )
        self.trace_bytes = Counter(
            "conveyor_trace_bytes_appended", "Log bytes accepted from runners (PATCH)", registry=self.registry
        )
        self.trace_patches = Counter("conveyor_trace_patches", "Log PATCHes accepted (202)", registry=self.registry)
        self.trace_range_mismatches = Counter(
            "conveyor_trace_range_mismatches", "Log PATCHes answered 416 (the runner resends)", registry=self.registry
        )

    def observe_trace_store(self, store: object) -> None:
        """Export a trace store's sealed-chunk counts (``RedisTraceStore.durable``)."""
        durable = getattr(store, "durable", None)
        self._read("conveyor_trace_chunks_sealed_total",
                   "Live log chunks made durable (segment files, object store or PostgreSQL)", durable, "sealed")
        self._read("conveyor_trace_chunk_object_failures_total",
                   "Live log chunks sealed into PostgreSQL rows because their segment file or the object store failed",
                   durable, "object_failures")

    def observe_admission(self, admission: object) -> None:
        """Export pipeline creations in progress and waiting (``queue.admission.Admission``)."""
        self._read("conveyor_pipeline_creations_in_progress", "Pipeline creations running on this process",
                   admission, "in_progress")
        self._read("conveyor_pipeline_creations_waiting",
                   "Pipeline creations waiting for a turn (CONVEYOR_PIPELINE_CREATION_CONCURRENCY)", admission, "waiting")

    def _read(self, name: str, documentation: str, source: object, attribute: str) -> None:
        """A gauge that reads ``source.attribute`` (0 when absent) at each scrape."""
        Gauge(name, documentation, registry=self.registry).set_function(lambda: getattr(source, attribute, 0))


class _ObserverCounters(Collector):
    """The statement observer's counts as Prometheus counters, read at each scrape."""

    COUNTERS = (
        ("conveyor_db_statements", "SQL statements sent", "statements"),
        ("conveyor_db_savepoints", "SAVEPOINTs sent (must stay 0)", "savepoints"),
        ("conveyor_db_savepoint_releases", "RELEASE SAVEPOINTs sent (must stay 0)", "releases"),
        ("conveyor_db_savepoint_rollbacks", "ROLLBACK TO SAVEPOINTs sent (must stay 0)", "rollbacks_to"),
        ("conveyor_db_transactions", "Transactions committed or rolled back", "transactions"),
        ("conveyor_db_transactions_logged", "Transactions logged for a savepoint or their length", "logged_transactions"),
    )

    def __init__(self, observer: StatementObserver) -> None:
        self._observer = observer

    def collect(self):  # noqa: ANN201
        for name, help_text, attribute in self.COUNTERS:
            yield CounterMetricFamily(name, help_text, value=getattr(self._observer, attribute))
