"""Pipeline counters start at zero for every topic x outcome and count exactly."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from streamkpi.exporter.pipeline import Outcome, PipelineMetrics


def test_every_topic_outcome_series_exists_at_zero() -> None:
    registry = CollectorRegistry()
    PipelineMetrics(registry, ["pageviews", "orders"])
    for topic in ("pageviews", "orders"):
        for outcome in ("accepted", "invalid", "duplicate", "late"):
            labels = {"topic": topic, "outcome": outcome}
            assert registry.get_sample_value("streamkpi_events_total", labels) == 0.0


def test_counts_and_dead_letters_are_labelled() -> None:
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry, ["pageviews"])
    metrics.count("pageviews", Outcome.accepted)
    metrics.count("pageviews", Outcome.accepted)
    metrics.count("pageviews", Outcome.invalid)
    metrics.dead_lettered("pageviews", "bad_ts")
    get = registry.get_sample_value
    assert get("streamkpi_events_total", {"topic": "pageviews", "outcome": "accepted"}) == 2.0
    assert get("streamkpi_events_total", {"topic": "pageviews", "outcome": "invalid"}) == 1.0
    assert get("streamkpi_dead_letters_total", {"topic": "pageviews", "reason": "bad_ts"}) == 1.0
