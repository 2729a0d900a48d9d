"""The health collector exports what the pipeline holds, for owned partitions only."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from streamkpi.events import Kind
from streamkpi.exporter.health import HealthCollector


@dataclass
class FakeEngine:
    watermarks: dict[Kind, float]
    overflows: dict[str, int]
    dropped: int = 0

    def watermark(self, kind: Kind) -> float | None:
        return self.watermarks.get(kind)

    @property
    def label_overflows(self) -> dict[str, int]:
        return self.overflows

    @property
    def dropped_writes(self) -> int:
        return self.dropped


@dataclass
class FakePipeline:
    engines: dict[int, FakeEngine]
    owned_set: set[int]
    topic_of: dict[Kind, str] = field(default_factory=lambda: {k: k.value for k in Kind})
    lag: dict[tuple[Kind, int], int] = field(default_factory=dict)
    replayed: int = 0
    checkpoints: int = 0
    checkpoint_seconds: float = 0.0
    retired_overflows: dict[str, int] = field(default_factory=dict)
    retired_dropped_writes: int = 0

    def owned(self) -> set[int]:
        return self.owned_set


def test_watermark_and_lag_only_for_owned_partitions() -> None:
    pipeline = FakePipeline(
        engines={
            0: FakeEngine({Kind.pageviews: 1000.0}, {"campaign": 2}),
            1: FakeEngine({Kind.pageviews: 2000.0}, {"campaign": 5}, dropped=1),
        },
        owned_set={0},
        lag={(Kind.pageviews, 0): 42, (Kind.pageviews, 1): 7},
        replayed=3,
        retired_overflows={"campaign": 10},
    )
    registry = CollectorRegistry()
    registry.register(HealthCollector(pipeline))
    get = registry.get_sample_value
    labels0 = {"topic": "pageviews", "partition": "0"}
    labels1 = {"topic": "pageviews", "partition": "1"}
    assert get("streamkpi_watermark_seconds", labels0) == 1000.0
    assert get("streamkpi_watermark_seconds", labels1) is None
    assert get("streamkpi_consumer_lag", labels0) == 42
    assert get("streamkpi_consumer_lag", labels1) is None
    # counters keep counting what engines no longer held (revoked) and all engines held
    assert get("streamkpi_label_overflows_total", {"label": "campaign"}) == 17
    assert get("streamkpi_label_overflows_total", {"label": "page"}) == 0
    assert get("streamkpi_dropped_bucket_writes_total") == 1
    assert get("streamkpi_replayed_records_total") == 3
    assert get("streamkpi_owned_partitions") == 1
