"""/kpis answers and snapshot records from engine rows."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from streamkpi.exporter.api import ApiError, kpis_document, snapshot_records

ROWS = [
    ("sessions", "5m", ("spring", "paid"), 40),
    ("converted_sessions", "5m", ("spring", "paid"), 4),
    # conversion 4 / (4 + 36) = 0.1; bounce 0 / (0 + 30) = 0 (two-component denominators)
    ("unconverted_sessions", "5m", ("spring", "paid"), 36),
    ("engaged_sessions", "5m", ("spring", "paid"), 30),
    ("revenue", "5m", ("spring", "paid"), Decimal("99.90")),
    ("purchases", "5m", ("spring", "paid"), 2),
    ("sessions", "1h", ("spring", "paid"), 400),
    ("landing_sessions", "5m", ("/",), 40),
]
WINDOWS = ("5m", "1h", "24h")


def test_kpis_defaults_to_the_shortest_window() -> None:
    doc = kpis_document(ROWS, {}, windows=WINDOWS, reference_s=10.0, partitions=[2, 0])
    assert doc["window"] == "5m"
    assert doc["partitions"] == [0, 2]
    assert doc["scope"] == "worker"
    (row,) = doc["campaigns"]
    assert row["kpis"]["conversion_rate"] == 0.1
    assert row["kpis"]["average_order_value"] == pytest.approx(49.95)
    assert row["kpis"]["bounce_rate"] == 0.0
    assert row["kpis"]["cpa"] is None  # no ad spend: no value
    assert doc["overall"]["components"]["revenue"] == pytest.approx(99.9)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"window": "7d"}, "window '7d' is not one of 5m, 1h, 24h"),
        ({"campain": "x"}, "unknown parameter(s): campain"),
    ],
)
def test_bad_queries_are_refused_with_a_reason(query: dict[str, str], message: str) -> None:
    with pytest.raises(ApiError) as info:
        kpis_document(ROWS, query, windows=WINDOWS, reference_s=0.0, partitions=[])
    assert str(info.value) == message


def test_a_repeated_parameter_is_refused_not_read_as_its_first_value() -> None:
    # Regression (#12): ?window=5m&window=1h answered for 5m without a word.
    query = [("window", "5m"), ("window", "1h")]
    with pytest.raises(ApiError) as info:
        kpis_document(ROWS, query, windows=WINDOWS, reference_s=0.0, partitions=[])
    assert str(info.value) == (
        "parameter 'window' is given more than once ('5m', '1h'); give it once"
    )
    # The same pairs without the repeat are answered.
    doc = kpis_document(ROWS, query[1:], windows=WINDOWS, reference_s=0.0, partitions=[])
    assert doc["window"] == "1h"


def test_snapshot_records_are_keyed_by_partition_and_tombstone_vanished_keys() -> None:
    records, live = snapshot_records(3, ROWS, reference_s=5.0, previous=set())
    values = {tuple(orjson.loads(k)): v for k, v in records}
    assert (3, "campaign_channel", "spring", "paid", "5m") in values
    assert (3, "page", "/", "5m") in values
    five = orjson.loads(values[(3, "campaign_channel", "spring", "paid", "5m")])
    assert five["components"] == {
        "converted_sessions": 4,
        "engaged_sessions": 30,
        "purchases": 2,
        "revenue": "99.90",
        "sessions": 40,
        "unconverted_sessions": 36,
    }
    assert five["kpis"]["conversion_rate"] == 0.1
    # next time the 1 h row is gone: its key gets a tombstone
    later, live2 = snapshot_records(3, ROWS[:4], reference_s=6.0, previous=live)
    tombstones = [orjson.loads(k) for k, v in later if v is None]
    assert tombstones == [[3, "campaign_channel", "spring", "paid", "1h"], [3, "page", "/", "5m"]]
    assert len(live2) == 1
