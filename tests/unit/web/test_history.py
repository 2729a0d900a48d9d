"""The live page's trend samples: exact per aggregate, a ring, bounded (#16)."""

from __future__ import annotations

import math

import pytest

from streamkpi.kpis.values import Row
from streamkpi.web.history import KpiHistory
from streamkpi.web.model import TILE_KPIS, Selection


def rows(sessions_c1: int, sessions_c2: int, bounced_c1: int = 0) -> list[Row]:
    return [
        ("sessions", "5m", ("c1", "paid"), sessions_c1),
        ("sessions", "5m", ("c2", "email"), sessions_c2),
        ("bounced_sessions", "5m", ("c1", "paid"), bounced_c1),
        ("engaged_sessions", "5m", ("c1", "paid"), sessions_c1 - bounced_c1),
        ("sessions", "1h", ("c1", "paid"), 10 * sessions_c1),
    ]


def test_each_aggregate_holds_its_own_kpis() -> None:
    history = KpiHistory(sample_s=10, history_s=60, max_series=100)
    history.sample(100.0, rows(40, 60, bounced_c1=10))
    history.sample(110.0, rows(50, 70, bounced_c1=25))

    def sessions(selection: Selection) -> list[float | None]:
        return [kpis["sessions"] for _, kpis in history.points(selection)]

    assert sessions(Selection("5m")) == [100, 120]
    assert sessions(Selection("5m", campaign="c1")) == [40, 50]
    assert sessions(Selection("5m", channel="email")) == [60, 70]
    assert sessions(Selection("5m", "c1", "paid")) == [40, 50]
    assert sessions(Selection("1h")) == [400, 500]
    bounce = [kpis["bounce_rate"] for _, kpis in history.points(Selection("5m", "c1"))]
    assert bounce == [pytest.approx(0.25), pytest.approx(0.5)]
    # No denominator: no value, not 0.
    assert history.points(Selection("5m", "c2"))[0][1]["bounce_rate"] is None
    # Nothing of a selection never seen.
    assert history.points(Selection("5m", "c9")) == []
    assert not history.kept(Selection("5m", "c9"))


def test_the_ring_keeps_history_s_and_forgets_what_vanished() -> None:
    history = KpiHistory(sample_s=10, history_s=30, max_series=100)
    assert history.capacity == 4
    for i in range(6):
        history.sample(100.0 + 10 * i, rows(i + 1, 1) if i < 5 else rows(0, 1)[1:2])
    points = history.points(Selection("5m", campaign="c1"))
    assert [t for t, _ in points] == [120.0, 130.0, 140.0, 150.0]
    # c1 had no row in the last sample: no value then (not its last value again).
    assert [kpis["sessions"] for _, kpis in points] == [3, 4, 5, None]


def test_the_previous_window_is_the_sample_at_now_minus_the_window_or_nothing() -> None:
    history = KpiHistory(sample_s=20, history_s=3900, max_series=100)
    for i in range(20):
        history.sample(1000.0 + 20 * i, rows(i, 0))
    now = 1000.0 + 20 * 19  # 1380
    before = history.at(Selection("5m"), now - 300)  # 1080: the 5th sample
    assert before is not None
    assert before["sessions"] == 4
    assert history.at(Selection("5m"), now - 3600) is None  # before the first sample
    # Within half a sample interval of one, or nothing: a neighbour is not the window.
    assert history.at(Selection("5m"), 1089.0) == before
    assert history.at(Selection("5m"), 1391.0) is None


def test_series_past_max_series_are_refused_but_overall_always_kept() -> None:
    history = KpiHistory(sample_s=10, history_s=60, max_series=3)
    many: list[Row] = [("sessions", "5m", (f"c{i}", "paid"), i + 1) for i in range(10)]
    history.sample(0.0, many)
    assert history.kept(Selection("5m"))
    assert history.series <= 1 + 3
    assert history.refused > 0


def test_memory_is_bounded_as_the_docstring_says() -> None:
    history = KpiHistory(sample_s=20, history_s=3900, max_series=150)
    history.sample(0.0, [("sessions", "5m", (f"c{i}", "paid"), 1) for i in range(400)])
    ring_bytes = history.capacity * len(TILE_KPIS) * 4
    assert history.series == 150  # overall included
    assert history.capacity == 196
    # 3 windows x 150 series x 196 samples x 20 KPIs x 4 bytes = 7.1 MB.
    assert 3 * history.series * ring_bytes < 7.2e6
    assert not math.isnan(history.points(Selection("5m"))[0][1]["sessions"] or math.nan)
