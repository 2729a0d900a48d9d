"""Pageviews: every session rule of the README, one test (or table row) each."""

from __future__ import annotations

from typing import Any

import pytest
from _engine_helpers import T0, Feed, pageview

DIRECT = ("none", "direct")
# A day-long window: no bucket of these tests expires while they look at it.
DAY = {"5m": 300, "1d": 86_400}


@pytest.mark.parametrize(
    ("first", "second", "dt", "sessions"),
    [
        ({}, {}, 599.0, 1),  # why: no session_ids, within the gap: joins
        ({}, {}, 600.0, 2),  # why: no session_ids, t = last + gap is not before it: new
        ({"session_id": "s"}, {"session_id": "s"}, 5000.0, 1),  # why: equal ids join at any gap
        ({"session_id": "s"}, {"session_id": "t"}, 1.0, 2),  # why: different ids
        ({"session_id": "s"}, {}, 1.0, 2),  # why: only the open session carries an id
        ({}, {"session_id": "s"}, 1.0, 2),  # why: only the event carries an id
        ({"session_id": ""}, {}, 1.0, 1),  # why: an empty session_id is no session_id
    ],
)
def test_event_joins_or_starts_a_session(
    first: dict[str, Any], second: dict[str, Any], dt: float, sessions: int
) -> None:
    feed = Feed(window_s=DAY)  # session_gap_s = 600
    feed(pageview(T0, **first), pageview(T0 + dt, **second))
    assert feed.total("sessions") == sessions


@pytest.mark.parametrize(
    ("other_ts", "sessions"),
    [
        (659.0, 1),  # why: watermark T0+599 has not reached last + gap: still open
        (660.0, 2),  # why: watermark T0+600 reached last + gap: ended, even for its id
    ],
)
def test_session_ends_when_the_watermark_reaches_last_plus_gap(
    other_ts: float, sessions: int
) -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0, "v", session_id="s"), pageview(T0 + other_ts, "w"))
    feed(pageview(T0 + other_ts, "v", session_id="s"))
    assert feed.component("sessions")[(0, DIRECT)] == 1
    assert feed.total("sessions") == sessions + 1  # + w's


def test_joining_event_extends_the_session() -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0, type="engagement", engaged_ms=1))
    feed(pageview(T0 + 500, type="engagement", engaged_ms=1))
    feed(pageview(T0 + 1000, type="engagement", engaged_ms=1))  # 500 s after the last
    assert feed.total("sessions") == 1


def test_out_of_order_event_does_not_move_last_back() -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0 + 100, type="engagement", engaged_ms=1))
    feed(pageview(T0 + 50, type="engagement", engaged_ms=1))  # joins; last stays T0+100
    feed(pageview(T0 + 690, type="engagement", engaged_ms=1))  # < T0+100+600: joins
    assert feed.total("sessions") == 1


def test_session_start_counts_in_the_bucket_of_its_start_with_its_labels() -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0 + 30, campaign="spring", utm_medium="cpc", page="/landing"))
    feed(pageview(T0 + 90, campaign="autumn", utm_medium="email", page="/other"))
    assert feed.cells() == {
        ("pageviews", 0, ("spring", "paid")): 1,
        ("pageviews", 60, ("spring", "paid")): 1,  # the session's labels, not the event's
        ("sessions", 0, ("spring", "paid")): 1,
        ("new_visitors", 0, ("spring", "paid")): 1,
        ("landing_sessions", 0, ("/landing",)): 1,
        # engaged at the 2nd page view: bounces taken back, nothing left to show
    }


def test_landing_page_is_none_when_absent() -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0))
    assert feed.component("landing_sessions") == {(0, ("none",)): 1}
    assert feed.component("landing_bounced_sessions") == {(0, ("none",)): 1}


def test_single_page_view_session_counts_as_bounced() -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0, page="/a"))
    assert feed.component("bounced_sessions") == {(0, DIRECT): 1}
    assert feed.component("landing_bounced_sessions") == {(0, ("/a",)): 1}


def test_second_page_view_engages_in_the_bucket_of_the_start() -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0, page="/a"), pageview(T0 + 300, page="/b"))
    assert feed.component("bounced_sessions") == {}
    assert feed.component("landing_bounced_sessions") == {}
    assert feed.component("sessions") == {(0, DIRECT): 1}
    assert feed.component("pageviews") == {(0, DIRECT): 1, (300, DIRECT): 1}


@pytest.mark.parametrize(
    ("engaged_ms", "bounced"),
    [
        ((9999,), 1),  # why: under 10 s
        ((10_000,), 0),  # why: exactly 10 s engages
        ((6000, 3999), 1),  # why: the sum is under 10 s
        ((6000, 4000), 0),  # why: the sum of engagement events reaches 10 s
    ],
)
def test_engagement_time_adds_up_to_engage(engaged_ms: tuple[int, ...], bounced: int) -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0))
    for i, ms in enumerate(engaged_ms):
        feed(pageview(T0 + 1 + i, type="engagement", engaged_ms=ms))
    assert feed.total("bounced_sessions") == bounced
    assert feed.total("pageviews") == 1  # engagement events are no page views


def test_engagement_is_counted_once() -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0), pageview(T0 + 1), pageview(T0 + 2))
    feed(pageview(T0 + 3, type="key_event", name="video"))
    assert feed.component("bounced_sessions") == {}
    assert feed.component("sessions") == {(0, DIRECT): 1}
    assert feed.component("landing_sessions") == {(0, ("none",)): 1}


def test_key_event_engages_and_converts_once_in_the_bucket_of_the_start() -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0 + 10, campaign="c", utm_medium="cpc"))
    feed(pageview(T0 + 70, type="key_event", name="video"))
    feed(pageview(T0 + 130, type="key_event", name="video"))
    assert feed.component("converted_sessions") == {(0, ("c", "paid")): 1}
    assert feed.component("bounced_sessions") == {}
    assert feed.component("leads") == {}  # "video" is not a lead event


def test_lead_key_event_counts_leads_and_conversions_at_its_time_each_time() -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0 + 10, campaign="c", utm_medium="cpc"))
    feed(pageview(T0 + 70, type="key_event", name="signup", campaign="other"))
    feed(pageview(T0 + 130, type="key_event", name="signup"))
    assert feed.component("leads") == {(60, ("c", "paid")): 1, (120, ("c", "paid")): 1}
    assert feed.component("conversions") == {(60, ("c", "paid")): 1, (120, ("c", "paid")): 1}
    assert feed.component("converted_sessions") == {(0, ("c", "paid")): 1}


def test_key_event_can_start_a_session() -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0, type="key_event", name="signup"))
    assert feed.cells() == {
        ("sessions", 0, DIRECT): 1,
        ("new_visitors", 0, DIRECT): 1,
        ("converted_sessions", 0, DIRECT): 1,
        ("leads", 0, DIRECT): 1,
        ("conversions", 0, DIRECT): 1,
        ("landing_sessions", 0, ("none",)): 1,
    }


@pytest.mark.parametrize(
    ("since_last", "new"),
    [
        (3600.0, 0),  # why: an event with ts >= t - visitor_memory_s was processed before
        (3600.5, 1),  # why: the visitor's latest event is older than visitor_memory_s
    ],
)
def test_new_visitor_looks_back_visitor_memory(since_last: float, new: int) -> None:
    feed = Feed(window_s=DAY)  # visitor_memory_s = 3600
    feed(pageview(T0), pageview(T0 + 500, type="engagement", engaged_ms=1))  # latest: T0+500
    feed(pageview(T0 + 500 + since_last))
    assert feed.total("new_visitors") == 1 + new


def test_new_visitor_counts_events_processed_before_even_with_a_later_ts() -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0 + 1000, "v", session_id="a"))
    feed(pageview(T0 + 990, "v", session_id="b"))  # another session, processed after
    assert feed.total("sessions") == 2
    assert feed.total("new_visitors") == 1


def test_visitor_memory_is_dropped_once_the_watermark_passes_it() -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0, "v"))
    feed.engine.take_dirty()
    feed(pageview(T0 + 3600 + 60 + 120, "w"))  # watermark passes T0 + memory (+ a slot)
    entries = dict(feed.engine.take_dirty())
    assert entries[b"v|v"] is None
    assert "v|v" not in feed.engine.debug_state()
    feed(pageview(T0 + 3600 + 60 + 120, "v"))
    assert feed.total("new_visitors") == 3  # v, w, and v again


def test_ended_session_leaves_state_but_memory_stays() -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0, "v"))
    assert feed.engine.debug_state()["v|v"][1] is not None
    feed(pageview(T0 + 600 + 60 + 120, "w"))  # watermark past v's end (+ a slot)
    assert feed.engine.debug_state()["v|v"] == [T0, None]


def test_pageviews_of_visitors_without_session_id_and_with_one_do_not_mix() -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0, "a"), pageview(T0, "b", session_id="s"), pageview(T0 + 1, "a"))
    assert feed.total("sessions") == 2
    assert feed.total("bounced_sessions") == 1  # a engaged at its 2nd page view
