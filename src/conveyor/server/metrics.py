"""Prometheus metrics of one server process, in a registry of its own (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from conveyor.server.db import StatementObserver


class Metrics:
    def __init__(self, observer: StatementObserver) -> None:
        self.registry = CollectorRegistry()
        Gauge("conveyor_db_statements_total", "SQL statements sent", registry=self.registry).set_function(
            lambda: observer.statements
        )
        Gauge(
            "conveyor_db_savepoints_total", "SAVEPOINTs sent (must stay 0)", registry=self.registry
        ).set_function(lambda: observer.savepoints)
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
        Gauge(
            "conveyor_trace_chunks_sealed_total", "Live log chunks made durable (segment files, object store or PostgreSQL)",
            registry=self.registry,
        ).set_function(lambda: getattr(durable, "sealed", 0))
        Gauge(
            "conveyor_trace_chunk_object_failures_total",
            "Live log chunks sealed into PostgreSQL rows because their segment file or the object store failed",
            registry=self.registry,
        ).set_function(lambda: getattr(durable, "object_failures", 0))
