"""Pageviews: every session rule of the README, one test (or table row) each."""

from __future__ import annotations

from typing import Any

import pytest
from _engine_helpers import T0, Feed, pageview

from streamkpi.events import Kind

DIRECT = ("none", "direct")
# A day-long window: no bucket of these tests expires while they look at it.
DAY = {"5m": 300, "1d": 86_400}
# A session whose last event is at T0 ends when the watermark reaches T0 + 600 (the gap);
# its undecided outcomes are dated T0 + 600 + 60 (allowed lateness): bucket 660.
ENDED = 660
# What a session that never engaged and had no key event counts at its end.
UNDECIDED = ("bounced_sessions", "unconverted_sessions", "sessions_without_key_event")


def end_all(feed: Feed, watermark: float = T0 + 10_000) -> None:
    """Raise the pageviews watermark (as the idle advance does) so open sessions end."""
    feed.engine.advance_watermark(Kind.pageviews, watermark)


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
    end_all(feed)
    spring = ("spring", "paid")
    assert feed.cells() == {
        ("pageviews", 0, spring): 1,
        ("pageviews", 60, spring): 1,  # the session's labels, not the event's
        ("sessions", 0, spring): 1,
        ("new_visitors", 0, spring): 1,
        ("landing_sessions", 0, ("/landing",)): 1,
        # engaged at the 2nd page view, in its bucket
        ("engaged_sessions", 60, spring): 1,
        ("landing_engaged_sessions", 60, ("/landing",)): 1,
        # decided at the end: last T0+90, + gap 600 + lateness 60 = T0+750
        ("unconverted_sessions", 720, spring): 1,
        ("sessions_without_key_event", 720, spring): 1,
    }


def test_landing_page_is_none_when_absent() -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0))
    end_all(feed)
    assert feed.component("landing_sessions") == {(0, ("none",)): 1}
    assert feed.component("landing_bounced_sessions") == {(ENDED, ("none",)): 1}


def test_single_page_view_session_is_undecided_until_it_ends_then_bounced() -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0, page="/a"))
    for name in (*UNDECIDED, "landing_bounced_sessions", "engaged_sessions"):
        assert feed.component(name) == {}, name
    feed.engine.advance_watermark(Kind.pageviews, T0 + 599)  # not reached last + gap
    assert feed.component("bounced_sessions") == {}
    # Ended at T0+600; the wheel holds ends by bucket, so it is written by the time the
    # watermark leaves the end's bucket, dated at the end all the same.
    feed.engine.advance_watermark(Kind.pageviews, T0 + 660)
    for name in UNDECIDED:
        assert feed.component(name) == {(ENDED, DIRECT): 1}, name
    assert feed.component("landing_bounced_sessions") == {(ENDED, ("/a",)): 1}
    assert feed.component("engaged_sessions") == {}


def test_a_replaced_session_is_decided_at_the_event_that_replaced_it() -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0, session_id="s", page="/a"))
    feed(pageview(T0 + 130, session_id="t", page="/b"))  # a new session id: replaced
    assert feed.component("bounced_sessions") == {(120, DIRECT): 1}
    assert feed.component("landing_bounced_sessions") == {(120, ("/a",)): 1}
    assert feed.component("sessions") == {(0, DIRECT): 1, (120, DIRECT): 1}


def test_a_session_ended_but_not_yet_dropped_is_dated_at_its_end_when_replaced() -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0, "v"), pageview(T0 + 659, "w"))  # watermark T0+599: v still open
    feed(pageview(T0 + 661, "w"))  # watermark T0+601: v ended (its slot is not due yet)
    feed(pageview(T0 + 661, "v"))  # starts v's next session, replacing the ended one
    assert feed.component("bounced_sessions") == {(ENDED, DIRECT): 1}


def test_second_page_view_engages_in_its_own_bucket() -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0, page="/a"), pageview(T0 + 300, page="/b"))
    end_all(feed)
    assert feed.component("engaged_sessions") == {(300, DIRECT): 1}
    assert feed.component("landing_engaged_sessions") == {(300, ("/a",)): 1}
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
    end_all(feed)
    assert feed.total("bounced_sessions") == bounced
    assert feed.total("engaged_sessions") == 1 - bounced
    assert feed.total("pageviews") == 1  # engagement events are no page views


def test_engagement_is_counted_once() -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0), pageview(T0 + 1), pageview(T0 + 2))
    feed(pageview(T0 + 3, type="key_event", name="video"))
    end_all(feed)
    assert feed.component("engaged_sessions") == {(0, DIRECT): 1}
    assert feed.component("bounced_sessions") == {}
    assert feed.component("sessions") == {(0, DIRECT): 1}
    assert feed.component("landing_sessions") == {(0, ("none",)): 1}


def test_key_event_engages_and_counts_the_session_once_at_the_first() -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0 + 10, campaign="c", utm_medium="cpc"))
    feed(pageview(T0 + 70, type="key_event", name="video"))
    feed(pageview(T0 + 130, type="key_event", name="video"))
    end_all(feed)
    paid = ("c", "paid")
    assert feed.component("key_event_sessions") == {(60, paid): 1}
    assert feed.component("engaged_sessions") == {(60, paid): 1}
    assert feed.component("converted_sessions") == {}  # "video" is not the purchase event
    # last T0+130 + gap 600 + lateness 60 = T0+790: bucket 780
    assert feed.component("unconverted_sessions") == {(780, paid): 1}
    assert feed.component("sessions_without_key_event") == {}
    assert feed.component("bounced_sessions") == {}
    assert feed.component("leads") == {}  # "video" is not a lead event


@pytest.mark.parametrize(
    ("purchase_event", "converted"),
    [
        ("purchase", 1),  # why: the default purchase key event
        ("order_completed", 0),  # why: another purchase event name is configured
    ],
)
def test_purchase_key_event_converts_the_session_once_at_its_time(
    purchase_event: str, converted: int
) -> None:
    feed = Feed(window_s=DAY, purchase_event=purchase_event)
    feed(pageview(T0 + 10, type="key_event", name="add_to_cart"))
    feed(pageview(T0 + 70, type="key_event", name="purchase"))
    feed(pageview(T0 + 130, type="key_event", name="purchase"))
    end_all(feed)
    assert feed.total("converted_sessions") == converted
    if converted:
        assert feed.component("converted_sessions") == {(60, DIRECT): 1}
    assert feed.total("unconverted_sessions") == 1 - converted
    assert feed.component("key_event_sessions") == {(0, DIRECT): 1}


def test_lead_key_event_counts_leads_and_conversions_at_its_time_each_time() -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0 + 10, campaign="c", utm_medium="cpc"))
    feed(pageview(T0 + 70, type="key_event", name="signup", campaign="other"))
    feed(pageview(T0 + 130, type="key_event", name="signup"))
    assert feed.component("leads") == {(60, ("c", "paid")): 1, (120, ("c", "paid")): 1}
    assert feed.component("conversions") == {(60, ("c", "paid")): 1, (120, ("c", "paid")): 1}
    assert feed.component("key_event_sessions") == {(60, ("c", "paid")): 1}
    assert feed.component("converted_sessions") == {}  # a signup is no purchase


def test_key_event_can_start_a_session() -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0, type="key_event", name="signup"))
    end_all(feed)
    assert feed.cells() == {
        ("sessions", 0, DIRECT): 1,
        ("new_visitors", 0, DIRECT): 1,
        ("engaged_sessions", 0, DIRECT): 1,
        ("key_event_sessions", 0, DIRECT): 1,
        ("unconverted_sessions", ENDED, DIRECT): 1,
        ("leads", 0, DIRECT): 1,
        ("conversions", 0, DIRECT): 1,
        ("landing_sessions", 0, ("none",)): 1,
        ("landing_engaged_sessions", 0, ("none",)): 1,
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
    end_all(feed)
    assert feed.total("sessions") == 2
    assert feed.total("bounced_sessions") == 1  # a engaged at its 2nd page view
    assert feed.total("engaged_sessions") == 1


def test_open_sessions_decide_nothing_and_every_ended_one_decides_each_outcome_once() -> None:
    feed = Feed(window_s=DAY)
    feed(pageview(T0, "a"), pageview(T0 + 5, "a"))  # engaged
    feed(pageview(T0 + 10, "b", type="key_event", name="purchase"))  # everything at once
    feed(pageview(T0 + 20, "c"))  # bounces
    assert feed.total("bounced_sessions") == 0  # all three still open
    end_all(feed)
    assert feed.total("engaged_sessions") + feed.total("bounced_sessions") == 3
    assert feed.total("converted_sessions") + feed.total("unconverted_sessions") == 3
    assert feed.total("key_event_sessions") + feed.total("sessions_without_key_event") == 3
    assert feed.total("converted_sessions") == 1
