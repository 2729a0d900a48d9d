"""Watermarks, late events, duplicates and offsets, per topic-partition."""

from __future__ import annotations

import pytest
from _engine_helpers import T0, Feed, email, order, pageview

from streamkpi.events import Kind


def test_watermark_is_highest_accepted_ts_minus_allowed_lateness() -> None:
    feed = Feed()  # allowed_lateness_s = 60
    assert feed.engine.watermark(Kind.pageviews) is None
    feed(pageview(T0 + 100))
    assert feed.engine.watermark(Kind.pageviews) == T0 + 40
    feed(pageview(T0 + 50))  # older: the watermark never goes back
    assert feed.engine.watermark(Kind.pageviews) == T0 + 40
    assert feed.engine.watermark(Kind.emails) is None  # each topic-partition has its own


@pytest.mark.parametrize(
    ("ts_offset", "outcome"),
    [
        (40.0, "accepted"),  # why: ts equal to the watermark is not below it
        (39.999, "late"),  # why: just below the watermark
        (-1000.0, "late"),  # why: far behind
        (500.0, "accepted"),  # why: ahead of the highest ts
    ],
)
def test_event_below_the_watermark_is_late(ts_offset: float, outcome: str) -> None:
    feed = Feed()
    feed(pageview(T0 + 100, "first"))
    assert feed(pageview(T0 + ts_offset, "v")) == [outcome]


def test_late_event_changes_nothing_but_the_offset() -> None:
    feed = Feed()
    feed(pageview(T0 + 100, "first"))
    feed.engine.take_dirty()
    before = feed.engine.debug_state()
    assert feed(pageview(T0, "v", event_id="late")) == ["late"]
    after = feed.engine.debug_state()
    assert after.pop("w|pageviews") == [T0 + 40, 2]
    before.pop("w|pageviews")
    assert after == before
    assert feed.engine.take_dirty() == [(b"w|pageviews", b"[1764158440.0,2]")]


def test_idle_advance_raises_the_watermark_and_fires_timers() -> None:
    feed = Feed()  # abandon_after_s = 600
    feed(order(T0, "c", type="cart_created", cart_id="k"))
    feed.engine.advance_watermark(Kind.orders, T0 + 599)
    assert feed.total("carts_abandoned") == 0
    feed.engine.advance_watermark(Kind.orders, T0 + 600)
    assert feed.component("carts_abandoned") == {(660, ("none", "none")): 1}  # + lateness
    assert feed.engine.watermark(Kind.orders) == T0 + 600
    feed.engine.advance_watermark(Kind.orders, T0)  # lower: no effect
    assert feed.engine.watermark(Kind.orders) == T0 + 600
    # An event is late against the advanced watermark even with no event that high.
    assert feed(order(T0 + 500, "c", type="refund", amount="1")) == ["late"]


def test_idle_advance_before_any_event_sets_the_watermark() -> None:
    feed = Feed()
    feed.engine.advance_watermark(Kind.surveys, T0)
    assert feed.engine.watermark(Kind.surveys) == T0
    assert feed(pageview(T0 - 3600)) == ["accepted"]  # other kinds are independent


@pytest.mark.parametrize(
    ("gap_s", "outcome"),
    [
        (0.0, "duplicate"),  # why: same id right away
        (300.0, "duplicate"),  # why: watermark T0+240 has not passed ts + horizon (T0+300)
        (360.0, "duplicate"),  # why: watermark T0+300 equals ts + horizon: not passed yet
        (361.0, "late"),  # why: watermark passed ts + horizon: forgotten, and ts is late
    ],
)
def test_duplicate_is_remembered_until_the_watermark_passes_ts_plus_horizon(
    gap_s: float, outcome: str
) -> None:
    feed = Feed()  # dedup_horizon_s = 300, allowed_lateness_s = 60
    feed(pageview(T0, event_id="x"))
    feed(pageview(T0 + gap_s, "other"))
    assert feed(pageview(T0, event_id="x")) == [outcome]


def test_forgotten_id_with_a_new_ts_is_accepted_again_and_remembered() -> None:
    feed = Feed()
    feed(pageview(T0, event_id="x"))
    feed(pageview(T0 + 1000, "other"))
    assert feed(pageview(T0 + 1000, "v2", event_id="x")) == ["accepted"]
    assert feed(pageview(T0 + 1000, "v2", event_id="x")) == ["duplicate"]
    assert feed.engine.debug_state()["d|pageviews"]["x"] == T0 + 1000


def test_duplicate_check_comes_before_late_check() -> None:
    feed = Feed()
    feed(pageview(T0, event_id="x"))
    feed(pageview(T0 + 200, "other"))  # watermark T0 + 140: x's ts is now late
    assert feed(pageview(T0, event_id="x")) == ["duplicate"]


def test_late_event_id_is_not_remembered() -> None:
    feed = Feed()
    feed(pageview(T0 + 200, "first"))
    assert feed(pageview(T0, event_id="y")) == ["late"]
    assert "y" not in feed.engine.debug_state()["d|pageviews"]
    # Not a duplicate later either: still late.
    assert feed(pageview(T0, event_id="y")) == ["late"]


def test_duplicate_counts_nothing() -> None:
    feed = Feed()
    feed(pageview(T0, event_id="x"))
    cells = feed.cells()
    assert feed(pageview(T0 + 1, "other visitor", event_id="x")) == ["duplicate"]
    assert feed.cells() == cells


def test_ids_are_remembered_per_topic_partition() -> None:
    feed = Feed()
    feed(pageview(T0, event_id="x"))
    assert feed(email(T0, event_id="x")) == ["accepted"]
    assert feed(order(T0, event_id="x", amount="1")) == ["accepted"]


def test_remembered_ids_are_dropped_after_the_horizon() -> None:
    feed = Feed()
    feed(*(pageview(T0 + i, f"v{i}") for i in range(100)))
    assert len(feed.engine.debug_state()["d|pageviews"]) == 100
    feed(pageview(T0 + 100 + 300 + 60 + 120, "late-comer"))
    assert len(feed.engine.debug_state()["d|pageviews"]) == 1


def test_next_offset_counts_every_record_seen() -> None:
    feed = Feed()
    assert feed.engine.next_offset(Kind.pageviews) == 0
    feed.engine.process(Kind.pageviews, pageview(T0), 41)
    assert feed.engine.next_offset(Kind.pageviews) == 42
    feed.engine.process(Kind.pageviews, pageview(T0 - 3600), 42)  # late
    assert feed.engine.next_offset(Kind.pageviews) == 43
    feed.engine.record_offset(Kind.pageviews, 43)  # dead-lettered as invalid
    assert feed.engine.next_offset(Kind.pageviews) == 44
    assert feed.engine.next_offset(Kind.orders) == 0


def test_event_of_the_wrong_kind_is_refused() -> None:
    feed = Feed()
    with pytest.raises(TypeError):
        feed.engine.process(Kind.orders, pageview(T0), 0)
