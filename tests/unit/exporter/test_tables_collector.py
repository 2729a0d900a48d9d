"""Table collectors export only the partitions this worker owns, summed per label."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from streamkpi.exporter.tables import (
    ChannelPageviewsCollector,
    partition_key,
    split_partition_key,
    sum_by_label,
)


@pytest.mark.parametrize(
    ("partition", "label"),
    [
        (0, "organic"),
        (17, "paid"),
        (2, "a|b"),  # why: a label may itself contain the separator
        (1, ""),  # why: empty label survives the round trip
    ],
)
def test_partition_key_round_trips(partition: int, label: str) -> None:
    assert split_partition_key(partition_key(partition, label)) == (partition, label)


def test_sum_by_label_ignores_partitions_not_owned() -> None:
    rows = {"0|paid": 2, "1|paid": 3, "2|paid": 100, "1|email": 4}
    assert sum_by_label(rows, {0, 1}) == {"paid": 5, "email": 4}
    assert sum_by_label(rows, set()) == {}


def test_collector_series_follow_owned_partitions_at_each_scrape() -> None:
    rows = {"0|paid": 2, "1|paid": 3, "1|direct": 7}
    owned = {0, 1}
    registry = CollectorRegistry()
    registry.register(ChannelPageviewsCollector(rows.items, lambda: owned))

    def sample(channel: str) -> float | None:
        return registry.get_sample_value("streamkpi_channel_pageviews_total", {"channel": channel})

    assert (sample("paid"), sample("direct")) == (5.0, 7.0)
    owned = {0}  # partition 1 revoked: its series must vanish, not linger
    assert (sample("paid"), sample("direct")) == (2.0, None)


def test_registration_does_not_read_the_table() -> None:
    def explode() -> list[tuple[str, int]]:
        raise AssertionError("table read at registration")

    CollectorRegistry().register(ChannelPageviewsCollector(explode, set))
