"""The live page's worker source: this worker's rows, its scope said, health from /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from streamkpi.exporter.pipeline import Outcome, PipelineMetrics
from streamkpi.kpis.values import Row
from streamkpi.web.history import KpiHistory
from streamkpi.web.model import Selection
from streamkpi.web.sources import LocalSource

ROWS: list[Row] = [
    ("sessions", "5m", ("c1", "paid"), 30),
    ("sessions", "5m", ("c2", "email"), 10),
]


def source(owned: set[int]) -> tuple[LocalSource, PipelineMetrics]:
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry, ["pageviews"])
    history = KpiHistory(sample_s=10, history_s=600, max_series=10)
    return LocalSource(lambda now: ROWS, registry, history, lambda: owned, 4), metrics


async def test_a_worker_with_some_partitions_says_so() -> None:
    local, _ = source({0, 2})
    view = await local.view(Selection("5m", campaign="c1"), 100.0)
    assert view.scope.startswith("This worker's partitions 0, 2 of 4")
    assert "--prometheus-url" in view.scope
    assert view.document["overall"]["components"] == {"sessions": 30}
    assert view.campaigns == ("c1", "c2")  # the filter lists every campaign, not the chosen
    assert view.channels == ("email", "paid")
    everything, _ = source({0, 1, 2, 3})
    assert (await everything.view(Selection("5m"), 100.0)).scope.startswith("All 4 partitions")


async def test_health_comes_from_the_workers_own_counters() -> None:
    local, metrics = source({0, 1, 2, 3})
    local.sample(100.0)
    for _ in range(50):
        metrics.count("pageviews", Outcome.accepted)
    metrics.dead_lettered("pageviews", "bad_json")
    health = (await local.view(Selection("5m"), 110.0)).health
    assert health.events_per_s == 5.0  # 50 records in the 10 s since the sample
    assert health.dead_letters == 1
    # The previous window: the sample 5 min before, if there is one.
    local.sample(400.0)
    view = await local.view(Selection("5m"), 400.0 + 300.0)
    assert view.previous is not None
    assert view.previous["sessions"] == 40
