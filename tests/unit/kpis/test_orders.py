"""Orders: purchases, money, returning customers, activation and churn, refunds, carts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from _engine_helpers import T0, Feed, order

from streamkpi.events import Kind
from streamkpi.exporter.pipeline import Outcome

NONE2 = ("none", "none")
DAY = {"5m": 300, "1h": 3600, "1d": 86_400}


def test_purchase_counts_purchases_revenue_and_conversions_at_its_time() -> None:
    feed = Feed()
    feed(order(T0 + 61, "c1", amount="19.99", campaign="spring", channel="paid"))
    feed(order(T0 + 62, "c2", amount="0.01", campaign="spring", channel="paid"))
    cells = feed.cells()
    assert cells[("purchases", 60, ("spring", "paid"))] == 2
    assert cells[("conversions", 60, ("spring", "paid"))] == 2
    assert cells[("revenue", 60, ("spring", "paid"))] == Decimal("20.00")


def test_money_sums_are_exact_decimals() -> None:
    feed = Feed()
    for i in range(10):
        feed(order(T0 + i, f"c{i}", amount="0.1"))
        feed(order(T0 + i, f"c{i}", type="refund", amount="0.1"))
    assert feed.component("revenue") == {(0, NONE2): Decimal("1.0")}
    assert feed.component("refunded_revenue") == {(0, NONE2): Decimal("1.0")}
    assert feed.component("refunds") == {(0, NONE2): 10}
    big = "123456789012345.6789012345"  # more digits than Decimal's default 28
    feed(order(T0 + 120, "x", amount=big), order(T0 + 121, "y", amount=big))
    assert feed.component("revenue")[(120, NONE2)] == Decimal(big) * 2


def test_orders_without_campaign_or_channel_are_labelled_none() -> None:
    feed = Feed()
    feed(order(T0, "c1", amount="1", campaign="spring"), order(T0, "c2", amount="1"))
    assert feed.component("purchases") == {(0, ("spring", "none")): 1, (0, NONE2): 1}


@pytest.mark.parametrize(
    ("previous", "returning"),
    [
        (None, 0),  # why: a first purchase
        (-7200.0, 1),  # why: a purchase exactly customer_memory_s before counts
        (-7200.5, 0),  # why: older than customer_memory_s: forgotten
        (+30.0, 1),  # why: processed before, even with a later ts
    ],
)
def test_returning_purchase_needs_a_purchase_within_customer_memory(
    previous: float | None, returning: int
) -> None:
    feed = Feed(window_s=DAY)  # customer_memory_s = 7200
    t = T0 + 10_000
    if previous is not None:
        feed.engine.process(Kind.orders, order(t + previous, "c", amount="1"), 0)
    feed.engine.process(Kind.orders, order(t, "c", amount="1"), 1)
    assert feed.total("returning_purchases") == returning


def test_refund_is_not_a_purchase_for_returning() -> None:
    feed = Feed()
    feed(order(T0, "c", type="refund", amount="5"), order(T0 + 1, "c", amount="5"))
    assert feed.total("returning_purchases") == 0
    assert feed.total("customer_activations") == 1


def test_first_purchase_activates_with_its_labels_and_later_ones_do_not() -> None:
    feed = Feed()
    feed(order(T0, "c", amount="1", campaign="spring", channel="paid"))
    feed(order(T0 + 100, "c", amount="1", campaign="autumn", channel="email"))
    assert feed.component("customer_activations") == {(0, ("spring", "paid")): 1}
    assert feed.engine.active_customers() == {("spring", "paid"): 1}


def test_churn_at_latest_purchase_plus_churn_after_with_activation_labels() -> None:
    feed = Feed(window_s=DAY)  # churn_after_s = 1800
    feed(order(T0, "c", amount="1", campaign="spring", channel="paid"))
    feed(order(T0 + 100, "c", amount="1", campaign="autumn", channel="email"))
    feed.engine.advance_watermark(Kind.orders, T0 + 1899)
    assert feed.engine.active_customers() == {("spring", "paid"): 1}
    feed.engine.advance_watermark(Kind.orders, T0 + 1900)
    assert feed.engine.active_customers() == {}
    assert feed.component("churned_customers") == {(1860, ("spring", "paid")): 1}


def test_purchase_after_churn_activates_again() -> None:
    feed = Feed(window_s=DAY)
    feed(order(T0, "c", amount="1", campaign="spring", channel="paid"))
    feed.engine.advance_watermark(Kind.orders, T0 + 1800)
    feed(order(T0 + 1900, "c", amount="1", campaign="autumn", channel="email"))
    assert feed.component("customer_activations") == {
        (0, ("spring", "paid")): 1,
        (1860, ("autumn", "email")): 1,
    }
    assert feed.engine.active_customers() == {("autumn", "email"): 1}
    assert feed.total("returning_purchases") == 1  # within customer_memory_s


def test_active_customers_per_window_is_the_count_at_the_window_start() -> None:
    feed = Feed(window_s={"5m": 300, "1h": 3600})
    feed(order(T0, "a", amount="1"), order(T0, "b", amount="1"))  # active from T0
    feed(order(T0 + 600, "c", amount="1"))  # active from T0 + 600
    feed.engine.advance_watermark(Kind.orders, T0 + 1800)  # a and b churn at T0 + 1800
    values = feed.windows(T0 + 1830)
    # 5m window (T0+1560 .. T0+1800): at its start a, b and c were active.
    assert values[("active_customers", "5m", NONE2)] == 3
    assert values[("churned_customers", "5m", NONE2)] == 2
    # 1h window (T0-1740 .. T0+1800): nobody was active at its start.
    assert ("active_customers", "1h", NONE2) not in values
    assert values[("customer_activations", "1h", NONE2)] == 3
    assert feed.engine.active_customers() == {NONE2: 1}


@pytest.mark.parametrize(
    ("purchase", "abandoned"),
    [
        ({"cart_id": "k"}, 0),  # why: same cart_id within abandon_after_s
        ({}, 0),  # why: no cart_id at all closes the customer's open carts
        ({"cart_id": "other"}, 1),  # why: another cart's purchase
        ({"customer": "someone else"}, 1),  # why: another customer's purchase
        ({"dt": 600.0}, 1),  # why: bought at cart ts + abandon_after_s: too late
        ({"dt": -1.0}, 1),  # why: bought before the cart was created (by ts)
    ],
)
def test_cart_is_bought_or_abandoned(purchase: dict[str, Any], abandoned: int) -> None:
    feed = Feed()  # abandon_after_s = 600
    dt = purchase.pop("dt", 599.0)
    customer = purchase.pop("customer", "c")
    feed(order(T0 + 100, "c", type="cart_created", cart_id="k", campaign="s", channel="paid"))
    feed(order(T0 + 100 + dt, customer, amount="1", **purchase))
    feed.engine.advance_watermark(Kind.orders, T0 + 100 + 600)
    assert feed.total("carts_abandoned") == abandoned
    assert feed.total("carts_purchased") == 1 - abandoned  # every cart decided once
    assert feed.component("carts_created") == {(60, ("s", "paid")): 1}


def test_cart_abandons_when_the_watermark_reaches_its_deadline_dated_at_that_moment() -> None:
    feed = Feed()
    feed(order(T0 + 100, "c", type="cart_created", cart_id="k", campaign="s", channel="paid"))
    feed.engine.advance_watermark(Kind.orders, T0 + 699)
    assert feed.total("carts_abandoned") == 0
    feed.engine.advance_watermark(Kind.orders, T0 + 700)
    # deadline T0+700 + allowed lateness 60 = T0+760: the stream time of the decision
    assert feed.component("carts_abandoned") == {(720, ("s", "paid")): 1}


def test_cart_deadline_fires_from_an_event_watermark_too() -> None:
    feed = Feed()  # allowed_lateness_s = 60
    feed(order(T0, "c", type="cart_created", cart_id="k"))
    feed(order(T0 + 660, "d", type="checkout_started"))  # watermark T0 + 600
    assert feed.component("carts_abandoned") == {(660, NONE2): 1}


def test_a_bought_cart_counts_at_the_purchase_with_the_carts_labels() -> None:
    feed = Feed()
    feed(order(T0 + 10, "c", type="cart_created", cart_id="k", campaign="s", channel="paid"))
    feed(order(T0 + 200, "c", amount="5", cart_id="k", campaign="t", channel="email"))
    assert feed.component("carts_purchased") == {(180, ("s", "paid")): 1}
    assert feed.component("purchases") == {(180, ("t", "email")): 1}


def test_abandonment_rate_of_the_short_window_is_not_stuck_at_zero() -> None:
    feed = Feed()  # abandon_after_s = 600, lateness 60
    for i in range(30):  # a cart a minute; every third one bought after two minutes
        feed(order(T0 + 60 * i, f"c{i}", type="cart_created", cart_id="k"))
        if i % 3 == 0:
            feed(order(T0 + 60 * i + 120, f"c{i}", amount="1"))
    windows = feed.windows(T0 + 60 * 29)
    abandoned = windows[("carts_abandoned", "5m", NONE2)]
    bought = windows[("carts_purchased", "5m", NONE2)]
    assert abandoned / (abandoned + bought) == pytest.approx(2 / 3, abs=0.15)


def test_duplicate_cart_created_for_an_open_cart_counts_once() -> None:
    feed = Feed(window_s=DAY)
    feed(order(T0, "c", type="cart_created", cart_id="k"))
    feed(order(T0 + 10, "c", type="cart_created", cart_id="k"))
    feed.engine.advance_watermark(Kind.orders, T0 + 10_000)
    assert feed.total("carts_created") == 1
    assert feed.total("carts_abandoned") == 1
    feed(order(T0 + 10_100, "c", type="cart_created", cart_id="k"))  # closed: a new cart
    assert feed.total("carts_created") == 2


def test_cart_created_without_cart_id_and_checkout_count_nothing() -> None:
    feed = Feed()
    feed(order(T0, "c", type="cart_created"), order(T0, "c", type="checkout_started"))
    feed.engine.advance_watermark(Kind.orders, T0 + 10_000)
    assert feed.cells() == {}


def test_a_purchase_without_cart_id_closes_every_open_cart_in_range() -> None:
    feed = Feed(window_s=DAY)
    feed(order(T0, "c", type="cart_created", cart_id="k1"))
    feed(order(T0 + 10, "c", type="cart_created", cart_id="k2"))
    feed(order(T0 + 20, "c", amount="1"))
    feed.engine.advance_watermark(Kind.orders, T0 + 10_000)
    assert feed.total("carts_abandoned") == 0


def test_customer_state_is_dropped_when_nothing_is_left_to_remember() -> None:
    feed = Feed(window_s=DAY)  # churn 1800, customer memory 7200
    feed(order(T0, "c", amount="1"))
    feed.engine.advance_watermark(Kind.orders, T0 + 1800)
    assert "c|c" in feed.engine.debug_state()  # churned, still remembered for returning
    feed.engine.advance_watermark(Kind.orders, T0 + 7200 + 120)
    assert "c|c" not in feed.engine.debug_state()


def test_a_cart_past_max_open_carts_is_refused_and_counts_nothing() -> None:
    feed = Feed(max_open_carts=3)
    carts = [order(T0 + i, "c", type="cart_created", cart_id=f"k{i}") for i in range(5)]
    outcomes = feed(*carts)
    assert outcomes == [Outcome.accepted] * 3 + [Outcome.invalid] * 2
    assert "already has 3 open carts, max_open_carts is 3" in feed.engine.refused
    assert feed.total("carts_created") == 3
    assert feed(carts[3]) == [Outcome.invalid]  # still no room
    assert feed(order(T0 + 5, "c", type="cart_created", cart_id="k0")) == [Outcome.accepted]
    feed(order(T0 + 6, "c", amount="1", cart_id="k1"))  # bought: room for one more
    # a refused event was not remembered as seen: its retry counts now
    assert feed(carts[3]) == [Outcome.accepted]
    assert feed(order(T0 + 7, "d", type="cart_created", cart_id="k9")) == [Outcome.accepted]
    feed.engine.advance_watermark(Kind.orders, T0 + 1000)
    assert feed.total("carts_created") == 5
    assert feed.total("carts_purchased") == 1
    assert feed.total("carts_abandoned") == 4


def test_a_customer_entry_at_the_cart_cap_fits_a_checkpoint_batch() -> None:
    # Worst case per cart: a 256-char id and a 200-char campaign of characters JSON must
    # escape (6 bytes each); the cap's upper bound must keep the entry below a batch.
    from streamkpi.config import Settings
    from streamkpi.topics import BATCH_BYTES

    cap = Settings.model_fields["max_open_carts"].metadata
    most = next(m.le for m in cap if getattr(m, "le", None) is not None)
    feed = Feed(max_open_carts=most)
    for i in range(most):
        cart_id = f"{i:04d}" + "\x01" * 252
        feed(order(T0, "c" * 256, type="cart_created", cart_id=cart_id, campaign="\x02" * 200))
    entries = [(k, v) for k, v in feed.engine.take_dirty() if k.startswith(b"c|")]
    assert len(entries) == 1
    size = len(entries[0][0]) + len(entries[0][1] or b"")
    assert 200_000 < size < BATCH_BYTES - 1024
