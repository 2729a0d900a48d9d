"""E-mails: counts per type, first opens and clicks per (recipient, campaign), memory."""

from __future__ import annotations

import pytest
from _engine_helpers import T0, Feed, email

NEWS = ("news", "email")
DAY = {"5m": 300, "1d": 86_400}
# Counted in the bucket of the pair's first delivery.
_COHORT = ("email_unique_opens", "email_machine_opens", "email_unique_clicks")


def test_firsts_count_in_the_bucket_of_the_first_delivery() -> None:
    feed = Feed(window_s=DAY)
    feed(email(T0 + 10, "r1", "delivered"), email(T0 + 70, "r1", "delivered"))
    feed(email(T0 + 700, "r1", "opened", machine_open=True))
    feed(email(T0 + 900, "r1", "opened"), email(T0 + 1900, "r1", "clicked"))
    assert {name: feed.component(name) for name in _COHORT} == {
        name: {(0, NEWS): 1} for name in _COHORT
    }


def test_firsts_before_any_delivery_wait_for_it_and_undelivered_ones_never_count() -> None:
    feed = Feed(window_s=DAY)
    feed(email(T0 + 10, "r1", "opened"), email(T0 + 20, "r1", "clicked"))
    feed(email(T0 + 30, "r2", "opened"))  # r2 is never delivered
    assert all(feed.total(name) == 0 for name in _COHORT)
    feed(email(T0 + 130, "r1", "delivered"))  # the delivery record came late
    assert feed.component("email_unique_opens") == {(120, NEWS): 1}
    assert feed.component("email_unique_clicks") == {(120, NEWS): 1}
    assert feed.total("email_machine_opens") == 0


def test_open_rate_of_any_window_is_at_most_one() -> None:
    feed = Feed(window_s=DAY)
    for i in range(5):  # a burst of deliveries, opened over the next two hours
        feed(email(T0 + i, f"r{i}", "delivered"))
    for i in range(5):
        feed(email(T0 + 1500 * i + 60, f"r{i}", "opened"))
        feed(email(T0 + 1500 * i + 90, f"r{i}", "clicked"))
    for reference in range(0, 7200, 60):
        windows = feed.windows(T0 + reference)
        for window in ("5m", "1d"):
            delivered = windows.get(("emails_delivered", window, NEWS), 0)
            opens = windows.get(("email_unique_opens", window, NEWS), 0)
            clicks = windows.get(("email_unique_clicks", window, NEWS), 0)
            assert clicks <= opens <= delivered, (reference, window)


@pytest.mark.parametrize(
    ("type_", "component"),
    [
        ("sent", "emails_sent"),  # why: every send
        ("delivered", "emails_delivered"),  # why: every delivery
        ("bounced", "emails_bounced"),  # why: hard or soft alike
        ("unsubscribed", "email_unsubscribes"),  # why: counted every time
        ("complained", "email_complaints"),  # why: counted every time
    ],
)
def test_plain_types_count_every_event(type_: str, component: str) -> None:
    feed = Feed()
    feed(email(T0, "r1", type_), email(T0 + 61, "r1", type_), email(T0 + 62, "r2", type_))
    assert feed.cells() == {(component, 0, NEWS): 1, (component, 60, NEWS): 2}


@pytest.mark.parametrize(
    ("events", "opens", "machine_opens", "clicks"),
    [
        ((("opened", False),), 1, 0, 0),  # why: a human open
        ((("opened", False), ("opened", False)), 1, 0, 0),  # why: only the first counts
        ((("opened", True), ("opened", True)), 0, 1, 0),  # why: first machine open, apart
        ((("opened", True), ("opened", False)), 1, 1, 0),  # why: machine and human both first
        ((("clicked", False), ("clicked", False)), 1, 0, 1),  # why: first click; it opened
        ((("clicked", False), ("opened", False)), 1, 0, 1),  # why: the click was the open
        ((("opened", True), ("clicked", False)), 1, 1, 1),  # why: a human clicked: opened
    ],
)
def test_unique_opens_and_clicks_count_the_first_per_recipient_and_campaign(
    events: tuple[tuple[str, bool], ...], opens: int, machine_opens: int, clicks: int
) -> None:
    feed = Feed()
    feed(email(T0, "r1", "delivered"))
    for i, (type_, machine) in enumerate(events):
        feed(email(T0 + 60 + i, "r1", type_, machine_open=machine))
    assert set(feed.cells()) <= {(name, 0, NEWS) for name in (*_COHORT, "emails_delivered")}
    assert feed.total("email_unique_opens") == opens
    assert feed.total("email_machine_opens") == machine_opens
    assert feed.total("email_unique_clicks") == clicks


def test_firsts_are_per_campaign_and_per_recipient() -> None:
    feed = Feed()
    for recipient, campaign in (("r1", "news"), ("r1", "promo"), ("r2", "news")):
        feed(email(T0, recipient, "delivered", campaign=campaign))
    feed(email(T0, "r1", "opened"), email(T0, "r1", "opened", campaign="promo"))
    feed(email(T0, "r2", "opened"))
    assert feed.component("email_unique_opens") == {(0, NEWS): 2, (0, ("promo", "email")): 1}


@pytest.mark.parametrize(
    ("since_latest", "opens"),
    [
        (3600.0, 1),  # why: exactly email_memory_s after the latest ts: still remembered
        (3601.0, 2),  # why: more than email_memory_s after it: forgotten, a first again
    ],
)
def test_pair_memory_is_forgotten_more_than_email_memory_after_its_latest_event(
    since_latest: float, opens: int
) -> None:
    feed = Feed(window_s=DAY)  # email_memory_s = 3600
    feed(email(T0, "r1", "opened"), email(T0 + 100, "r1", "delivered"))  # latest: T0 + 100
    feed(email(T0 + 100 + since_latest, "r1", "opened"))
    feed(email(T0 + 100 + since_latest, "r1", "delivered"))  # a first delivery if forgotten
    assert feed.total("email_unique_opens") == opens


def test_pair_is_dropped_once_the_watermark_passes_its_latest_plus_memory() -> None:
    feed = Feed(window_s=DAY)
    feed(email(T0, "r1", "delivered"), email(T0, "r1", "opened"))
    entry = b"[1764158400.0,1,1764158400.0]"  # latest, flags (opened), first delivery
    assert dict(feed.engine.take_dirty())[b'e|["r1","news"]'] == entry
    feed(email(T0 + 3600 + 60 + 120, "r2", "sent"))  # watermark past T0 + 3600 (+ a slot)
    assert dict(feed.engine.take_dirty())[b'e|["r1","news"]'] is None
    feed(email(T0 + 3600 + 60 + 120, "r1", "delivered"))
    feed(email(T0 + 3600 + 60 + 120, "r1", "opened"))
    assert feed.total("email_unique_opens") == 2


def test_campaign_label_is_capped_but_memory_keeps_the_real_campaign() -> None:
    feed = Feed(max_campaigns=1)
    for campaign in "abc":
        feed(email(T0, "r1", "delivered", campaign=campaign))
    feed(email(T0, "r1", "opened", campaign="a"), email(T0, "r1", "opened", campaign="b"))
    feed(email(T0, "r1", "opened", campaign="c"))
    # b and c fold into "other", yet each is its own pair: three first opens.
    assert feed.component("email_unique_opens") == {
        (0, ("a", "email")): 1,
        (0, ("other", "email")): 2,
    }
