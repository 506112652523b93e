"""Prometheus metrics of one server process, in a registry of its own (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

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
