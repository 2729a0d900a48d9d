"""Pipeline-health counters: events by outcome and dead letters by reason."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

__all__ = ["Outcome", "PipelineMetrics"]

# `*_created` timestamps double the series count and no dashboard or rule reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus_client


class Outcome(StrEnum):
    """What happened to one consumed record (the ``outcome`` label)."""

    accepted = "accepted"
    invalid = "invalid"
    duplicate = "duplicate"
    late = "late"


class PipelineMetrics:
    """Process-local counters of what the worker did with each record."""

    def __init__(self, registry: CollectorRegistry, topics: Iterable[str]) -> None:
        """Register the counters and pre-create every topic x outcome series at zero."""
        self.events = Counter(
            "streamkpi_events",
            "Records consumed, by logical topic and outcome.",
            ["topic", "outcome"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "streamkpi_dead_letters",
            "Records written to the dead-letter topic, by logical source topic and reason.",
            ["topic", "reason"],
            registry=registry,
        )
        self.event_lag = Histogram(
            "streamkpi_event_lag_seconds",
            "Processing time minus event time of records processed (non-late ones included).",
            ["topic"],
            registry=registry,
            # From "live" to "a day behind": replays and backfills land in the top buckets.
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 86400),
        )
        # A series that exists at 0 lets rate() and absent-checks work before the first event.
        for topic in topics:
            for outcome in Outcome:
                self.events.labels(topic, outcome.value)

    def count(self, topic: str, outcome: Outcome) -> None:
        """Count one record of ``topic`` with ``outcome``."""
        self.events.labels(topic, outcome.value).inc()

    def dead_lettered(self, topic: str, reason: str) -> None:
        """Count one record of ``topic`` sent to the DLQ for ``reason``."""
        self.dead_letters.labels(topic, reason).inc()
