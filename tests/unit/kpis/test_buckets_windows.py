"""Bucket index maths, window membership, component families, expiry and running sums."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from _engine_helpers import T0, Feed, adspend, email, order, pageview

from streamkpi.kpis.buckets import Family, bucket_start
from streamkpi.kpis.engine import FAMILIES
from streamkpi.kpis.spec import COMPONENTS
from streamkpi.kpis.windows import in_window, window_buckets


@pytest.mark.parametrize(
    ("ts_s", "bucket_s", "start"),
    [
        (120.0, 60, 120),  # why: a boundary belongs to the bucket it starts
        (179.999, 60, 120),  # why: just before the next boundary
        (180.0, 60, 180),  # why: the next boundary
        (0.0, 60, 0),  # why: the epoch
        (-0.5, 60, -60),  # why: floor, not truncation, before the epoch
        (T0 + 59.999999, 60, int(T0)),  # why: microseconds before a boundary, float epoch s
        (T0 + 7, 1, int(T0) + 7),  # why: one-second buckets
        (T0 + 3599, 3600, int(T0)),  # why: hour buckets
    ],
)
def test_bucket_start_floors_to_the_bucket_size(ts_s: float, bucket_s: int, start: int) -> None:
    assert bucket_start(ts_s, bucket_s) == start


@pytest.mark.parametrize(
    ("reference_s", "window_s", "first", "last"),
    [
        (600.0, 300, 360, 600),  # why: 5 buckets up to and including the reference's
        (659.9, 300, 360, 600),  # why: the reference bucket, not the reference instant
        (660.0, 300, 420, 660),  # why: a new bucket moves the whole window
        (600.0, 60, 600, 600),  # why: a one-bucket window is the reference bucket
    ],
)
def test_window_is_the_most_recent_buckets_up_to_the_reference_bucket(
    reference_s: float, window_s: int, first: int, last: int
) -> None:
    assert window_buckets(reference_s, window_s, 60) == (first, last)


@pytest.mark.parametrize(
    ("start", "inside"),
    [
        (300, False),  # why: one bucket too old
        (360, True),  # why: the oldest bucket of the window
        (600, True),  # why: the reference bucket
        (660, False),  # why: after the reference (an event from the future)
    ],
)
def test_in_window_matches_window_buckets(start: int, inside: bool) -> None:
    assert in_window(start, 630.0, 300, 60) is inside


def test_every_counted_component_of_the_spec_has_a_family() -> None:
    counted = {name for family in FAMILIES for name in family.components}
    assert counted == {c.name for c in COMPONENTS if not c.stock}


@pytest.mark.parametrize(
    ("components", "error"),
    [
        (("pageviews", "no_such_component"), KeyError),  # why: names come from spec
        (("pageviews", "landing_sessions"), ValueError),  # why: one label set per family
        (("active_customers",), ValueError),  # why: a stock is derived, never counted
        (("pageviews", "pageviews"), ValueError),  # why: a position per component
    ],
)
def test_family_refuses_what_the_spec_does_not_allow(
    components: tuple[str, ...], error: type[Exception]
) -> None:
    with pytest.raises(error):
        Family("x", components)


def test_family_layout_follows_the_spec_units() -> None:
    family = Family("x", ("purchases", "revenue"))
    assert family.money == frozenset({1})
    row = family.decode(family.encode([3, Decimal("1.10")]))
    assert list(row) == [3, Decimal("1.10")]
    assert family.encode(family.template[:]) == b"{}"  # zeros are left out


def test_a_write_into_an_expired_bucket_is_dropped_and_counted() -> None:
    # keep = longest window (1 h) + lateness (60 s).
    feed = Feed(email_memory_s=86_400)
    feed(email(T0, "r1", "delivered"))
    feed(email(T0 + 3780, "r2", "delivered"))  # watermark T0 + 3720: the T0 bucket expires
    assert ("emails_delivered", 0, ("news", "email")) not in feed.cells()
    assert feed.engine.dropped_writes == 0
    # r1 opens over an hour later: its open belongs to the expired bucket of its delivery.
    assert feed(email(T0 + 3790, "r1", "opened")) == ["accepted"]
    assert feed.engine.dropped_writes == 1
    assert feed.component("emails_delivered") == {(3780, ("news", "email")): 1}
    assert feed.total("email_unique_opens") == 0


def test_expiry_follows_the_highest_watermark_of_the_partition() -> None:
    feed = Feed()
    feed(order(T0, "c", amount="5"))
    feed(pageview(T0 + 3600 + 240, "v"))  # pageviews watermark expires T0's buckets
    assert feed.component("purchases") == {}
    # An order of a lagging topic-partition is not late on its own watermark ...
    assert feed(order(T0 + 30, "c", type="refund", amount="1")) == ["accepted"]
    # ... but its bucket has expired.
    assert feed.component("refunds") == {}
    assert feed.engine.dropped_writes == 1


def test_expired_cells_are_tombstoned_in_the_next_entries() -> None:
    feed = Feed()
    feed(adspend(T0, "spring", "paid", "10.00"))
    first = dict(feed.engine.take_dirty())
    key = b'b|["ad",1764158400,"spring","paid"]'
    assert first[key] == b'{"ad_spend":"10.00"}'
    feed(adspend(T0 + 3600 + 240, "spring", "paid", "1.00"))
    assert dict(feed.engine.take_dirty())[key] is None


def test_running_window_sums_equal_sums_from_scratch() -> None:
    """Scrapes that move forward bucket by bucket agree with a rebuild at every step."""
    rng = random.Random(7)
    live = Feed()
    clock = T0
    for step in range(400):
        clock += rng.uniform(0, 30)
        ts = clock - rng.uniform(0, 50)
        live(
            pageview(ts, f"v{rng.randrange(30)}", campaign=rng.choice(["a", "b", None])),
            adspend(
                ts, rng.choice(["a", "b"]), "paid", f"{rng.randrange(1, 999)}.{step % 100:02d}"
            ),
        )
        if step % 7 == 0:
            reference = clock + rng.uniform(-20, 40)
            if live.engine._windows.ref is not None:
                reference = max(reference, live.engine._windows.ref)
            running = live.windows(reference)
            live.engine._windows.ref = None  # force a rebuild from the cells
            assert live.windows(reference) == running, step


def test_window_values_exclude_buckets_after_the_reference() -> None:
    feed = Feed()
    feed(pageview(T0, "a"), pageview(T0 + 120, "b"))
    assert feed.windows(T0 + 59) == {
        ("pageviews", "5m", ("none", "direct")): 1,
        ("sessions", "5m", ("none", "direct")): 1,
        ("new_visitors", "5m", ("none", "direct")): 1,
        ("landing_sessions", "5m", ("none",)): 1,
        ("pageviews", "1h", ("none", "direct")): 1,
        ("sessions", "1h", ("none", "direct")): 1,
        ("new_visitors", "1h", ("none", "direct")): 1,
        ("landing_sessions", "1h", ("none",)): 1,
    }
    assert feed.windows(T0 + 360)[("pageviews", "5m", ("none", "direct"))] == 1  # T0 left
    assert feed.windows(T0 + 360)[("pageviews", "1h", ("none", "direct"))] == 2


def test_bucket_changed_after_a_scrape_and_expired_before_the_next_leaves_no_residue() -> None:
    feed = Feed(email_memory_s=86_400)  # windows 5m and 1h, lateness 60: buckets live 1h+60s
    feed(email(T0, "r1", "delivered"))
    assert feed.windows(T0 + 3590)[("emails_delivered", "1h", ("news", "email"))] == 1
    feed(email(T0 + 3591, "r1", "opened"))  # an open into the T0 bucket of its delivery
    feed(email(T0 + 3780, "r2", "sent"))  # the T0 bucket expires before the next scrape
    running = feed.windows(T0 + 3600)
    feed.engine._windows.ref = None  # force a rebuild from the cells
    assert feed.windows(T0 + 3600) == running
