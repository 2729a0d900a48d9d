"""Label caps: the first N distinct values per partition keep their name, the rest fold."""

from __future__ import annotations

from _engine_helpers import T0, Feed, adspend, email, order, pageview, survey

from streamkpi.kpis.engine import PartitionEngine
from streamkpi.kpis.labels import LabelCap


def test_first_values_in_processing_order_keep_their_name() -> None:
    cap = LabelCap("campaign", 2)
    assert [cap.resolve(v) for v in ["b", "a", "c", "b", "d", "a"]] == [
        "b",
        "a",
        "other",
        "b",
        "other",
        "a",
    ]
    assert cap.overflows == 2


def test_absent_or_empty_value_is_none_and_takes_no_slot() -> None:
    cap = LabelCap("campaign", 1)
    assert [cap.resolve(v) for v in [None, "", "none", "x", "y"]] == [
        "none",
        "none",
        "none",
        "x",
        "other",
    ]


def test_allowlisted_values_keep_their_name_and_take_no_slot() -> None:
    cap = LabelCap("campaign", 1, frozenset({"brand"}))
    assert [cap.resolve(v) for v in ["x", "brand", "y", "brand"]] == [
        "x",
        "brand",
        "other",
        "brand",
    ]


def test_campaign_cap_is_shared_by_every_kind_of_the_partition() -> None:
    feed = Feed(max_campaigns=3, campaign_allowlist=frozenset({"brand"}))
    feed(pageview(T0, "v1", campaign="a", utm_medium="cpc"))
    feed(email(T0, "r1", "sent", campaign="b"))
    feed(order(T0, "c1", amount="1", campaign="c", channel="paid"))
    feed(adspend(T0, "d", "paid", "1"), adspend(T0, "brand", "paid", "1"))
    feed(survey(T0, "n1", 9, campaign="a"))
    assert set(feed.cells()) >= {
        ("pageviews", 0, ("a", "paid")),
        ("emails_sent", 0, ("b", "email")),
        ("purchases", 0, ("c", "paid")),
        ("ad_spend", 0, ("other", "paid")),  # d came 4th
        ("ad_spend", 0, ("brand", "paid")),
        ("nps_responses", 0, ("a", "none")),
    }
    assert feed.engine.label_overflows == {"campaign": 1, "page": 0}


def test_joining_pageview_does_not_take_a_campaign_slot() -> None:
    # Only a session's start labels anything; a joining event's campaign labels nothing.
    feed = Feed(max_campaigns=1)
    feed(pageview(T0, "v", campaign="first"), pageview(T0 + 1, "v", campaign="second"))
    feed(pageview(T0 + 2, "w", campaign="third", utm_medium="cpc"))
    assert feed.component("sessions") == {(0, ("first", "direct")): 1, (0, ("other", "paid")): 1}
    assert feed.engine.label_overflows["campaign"] == 1


def test_landing_pages_fold_past_max_pages() -> None:
    feed = Feed(max_pages=2)
    for i, page in enumerate(["/a", "/b", "/c", "/a"]):
        feed(pageview(T0, f"v{i}", page=page))
    assert feed.component("landing_sessions") == {
        (0, ("/a",)): 2,
        (0, ("/b",)): 1,
        (0, ("other",)): 1,
    }
    assert feed.engine.label_overflows == {"campaign": 0, "page": 1}


def test_admissions_are_checkpointed_and_restored() -> None:
    feed = Feed(max_campaigns=2)
    feed(adspend(T0, "x", "paid", "1"), adspend(T0, "y", "paid", "1"))
    entries = feed.engine.take_dirty()
    assert (b"l|c|x", b"0") in entries
    assert (b"l|c|y", b"1") in entries
    restored = Feed(PartitionEngine.restore(0, feed.engine.config, entries))
    restored(adspend(T0, "z", "paid", "1"), adspend(T0, "x", "paid", "1"))
    assert restored.component("ad_spend")[(0, ("other", "paid"))] == 1
    assert restored.component("ad_spend")[(0, ("x", "paid"))] == 2
