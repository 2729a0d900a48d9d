"""Pipeline-health gauges read at scrape time: watermarks, consumer lag, caps, checkpoints."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streamkpi.events import Kind

__all__ = ["HealthCollector", "HealthSource"]


class EngineView(Protocol):
    """What the collector reads of one partition's engine."""

    def watermark(self, kind: Kind) -> float | None:
        """Return the watermark of ``kind``'s topic-partition."""
        ...

    @property
    def label_overflows(self) -> dict[str, int]:
        """Return how many label values folded into ``other``, by label."""
        ...

    @property
    def dropped_writes(self) -> int:
        """Return how many writes hit an already expired bucket."""
        ...


class HealthSource(Protocol):
    """What the collector reads of the pipeline."""

    @property
    def engines(self) -> Mapping[int, EngineView]:
        """Return the pipeline's ``engines``."""
        ...

    @property
    def lag(self) -> Mapping[tuple[Kind, int], int]:
        """Return the pipeline's ``lag``."""
        ...

    @property
    def replayed(self) -> int:
        """Return the pipeline's ``replayed``."""
        ...

    @property
    def checkpoints(self) -> int:
        """Return the pipeline's ``checkpoints``."""
        ...

    @property
    def checkpoint_seconds(self) -> float:
        """Return the pipeline's ``checkpoint_seconds``."""
        ...

    @property
    def retired_overflows(self) -> Mapping[str, int]:
        """Return the pipeline's ``retired_overflows``."""
        ...

    @property
    def retired_dropped_writes(self) -> int:
        """Return the pipeline's ``retired_dropped_writes``."""
        ...

    def owned(self) -> set[int]:
        """Return the partitions this worker owns now."""
        ...


class HealthCollector(Collector):
    """Export the pipeline's health from its state at scrape time."""

    def __init__(self, source: HealthSource) -> None:
        """Read ``source`` at every scrape."""
        self._source = source

    def describe(self) -> Iterable[Metric]:
        """Describe the families without reading the pipeline."""
        return list(self._families().values())

    def collect(self) -> Iterator[Metric]:
        """Build the families from the owned engines."""
        source = self._source
        families = self._families()
        owned = source.owned()
        overflows = dict(source.retired_overflows)
        dropped = source.retired_dropped_writes
        now = time.time()
        for partition, engine in sorted(source.engines.items()):
            for label, count in engine.label_overflows.items():
                overflows[label] = overflows.get(label, 0) + count
            dropped += engine.dropped_writes
            if partition not in owned:
                continue
            for kind in Kind:
                labels = [kind.value, str(partition)]
                watermark = engine.watermark(kind)
                if watermark is not None:
                    families["watermark"].add_metric(labels, watermark)
                    families["watermark_delay"].add_metric(labels, now - watermark)
                lag = source.lag.get((kind, partition))
                if lag is not None:
                    families["lag"].add_metric(labels, lag)
        for label in ("campaign", "page"):
            families["overflows"].add_metric([label], overflows.get(label, 0))
        families["dropped"].add_metric([], dropped)
        families["replayed"].add_metric([], source.replayed)
        families["checkpoints"].add_metric([], source.checkpoints)
        families["checkpoint_seconds"].add_metric([], source.checkpoint_seconds)
        families["owned"].add_metric([], len(owned))
        yield from families.values()

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily | CounterMetricFamily]:
        topic_partition = ["topic", "partition"]
        return {
            "watermark": GaugeMetricFamily(
                "streamkpi_watermark_seconds",
                "Event-time watermark of an owned input partition (epoch seconds).",
                labels=topic_partition,
            ),
            "watermark_delay": GaugeMetricFamily(
                "streamkpi_watermark_delay_seconds",
                "Wall clock minus the watermark: how far behind real time windows close.",
                labels=topic_partition,
            ),
            "lag": GaugeMetricFamily(
                "streamkpi_consumer_lag",
                "Records of an owned input partition not yet processed (end offset - next).",
                labels=topic_partition,
            ),
            "overflows": CounterMetricFamily(
                "streamkpi_label_overflows",
                "Label values folded into 'other' by the cardinality caps.",
                labels=["label"],
            ),
            "dropped": CounterMetricFamily(
                "streamkpi_dropped_bucket_writes",
                "Cohort writes into buckets already expired (e.g. sessions longer than 24 h).",
            ),
            "replayed": CounterMetricFamily(
                "streamkpi_replayed_records",
                "Records skipped after a restore because the state already held them.",
            ),
            "checkpoints": CounterMetricFamily(
                "streamkpi_checkpoints",
                "Checkpoint transactions committed (state + offsets + dead letters).",
            ),
            "checkpoint_seconds": CounterMetricFamily(
                "streamkpi_checkpoint_seconds",
                "Time spent committing checkpoints.",
            ),
            "owned": GaugeMetricFamily(
                "streamkpi_owned_partitions",
                "Input partitions (of every topic at once) this worker owns.",
            ),
        }
