"""Scrape-time collectors that read Faust tables (only the partitions this worker owns)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["ChannelPageviewsCollector", "partition_key", "split_partition_key", "sum_by_label"]

_SEP = "|"


def partition_key(partition: int, label: str) -> str:
    """Return the table key of ``label`` counted from source ``partition``.

    Keys carry their source partition so each partition's counts are an exact partial sum:
    a worker exports only the partitions it actively owns, and workers add up without
    double counting standby replicas or stale data of revoked partitions.
    """
    return f"{partition}{_SEP}{label}"


def split_partition_key(key: str) -> tuple[int, str]:
    """Invert partition_key()."""
    partition, _, label = key.partition(_SEP)
    return int(partition), label


class ChannelPageviewsCollector(Collector):
    """Export ``streamkpi_channel_pageviews_total{channel}`` from the per-channel table."""

    def __init__(
        self,
        items: Callable[[], Iterable[tuple[Any, Any]]],
        owned_partitions: Callable[[], set[int]],
    ) -> None:
        """Read table rows with ``items`` and keep those of ``owned_partitions()``."""
        self._items = items
        self._owned = owned_partitions

    def describe(self) -> Iterable[Metric]:
        """Describe the family without reading the table (it may not be ready yet)."""
        return [self._family()]

    def collect(self) -> Iterator[Metric]:
        """Sum the owned partitions' counts per channel."""
        rows = {str(key): int(value) for key, value in list(self._items())}
        totals = sum_by_label(rows, self._owned())
        family = self._family()
        for channel, total in sorted(totals.items()):
            family.add_metric([channel], total)
        yield family

    @staticmethod
    def _family() -> CounterMetricFamily:
        return CounterMetricFamily(
            "streamkpi_channel_pageviews",
            "Accepted pageviews since the table began, by channel (changelog-backed).",
            labels=["channel"],
        )


def sum_by_label(rows: Mapping[str, int], owned: set[int]) -> dict[str, int]:
    """Sum partition-keyed ``rows`` over the ``owned`` partitions, per label."""
    totals: dict[str, int] = {}
    for key, value in rows.items():
        partition, label = split_partition_key(key)
        if partition in owned:
            totals[label] = totals.get(label, 0) + value
    return totals
