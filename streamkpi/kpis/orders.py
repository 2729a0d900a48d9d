"""Orders: purchases, refunds, carts, returning and active customers (README, "Orders").

State per customer: the ts of their latest purchase (``returning_purchases`` look-back
and churn time), the labels they were activated with while active, and their open carts.
Cart abandonment and churn write counts when they fire (abandonment in the bucket of that
decision, #11), so they run on exact heaps: one entry per open cart (popped at its
deadline), and one per active customer (churn time only moves later, so a popped entry
that is early files the customer again). The look-back memory only bounds state and uses
a timer wheel.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from decimal import Decimal
from typing import Final

from streamkpi.events import OrderEvent
from streamkpi.kpis import codec
from streamkpi.kpis.buckets import MONEY, BucketStore, Family
from streamkpi.kpis.config import EngineConfig
from streamkpi.kpis.labels import NONE, LabelCap, LabelSpace
from streamkpi.kpis.timers import Wheel

__all__ = ["ORDERS", "Customer", "Orders"]

ORDERS: Final = Family(
    "or",
    (
        "purchases",
        "returning_purchases",
        "revenue",
        "conversions",
        "customer_activations",
        "churned_customers",
        "refunds",
        "refunded_revenue",
        "carts_created",
        "carts_abandoned",
        "carts_purchased",
    ),
)
_PURCHASES: Final = ORDERS.pos("purchases")
_RETURNING: Final = ORDERS.pos("returning_purchases")
_REVENUE: Final = ORDERS.pos("revenue")
_CONVERSIONS: Final = ORDERS.pos("conversions")
_ACTIVATIONS: Final = ORDERS.pos("customer_activations")
_CHURNED: Final = ORDERS.pos("churned_customers")
_REFUNDS: Final = ORDERS.pos("refunds")
_REFUNDED: Final = ORDERS.pos("refunded_revenue")
_CARTS_CREATED: Final = ORDERS.pos("carts_created")
_CARTS_ABANDONED: Final = ORDERS.pos("carts_abandoned")
_CARTS_PURCHASED: Final = ORDERS.pos("carts_purchased")

_ZERO: Final = Decimal(0)


class Customer:
    """One customer's latest purchase, activation labels and open carts."""

    __slots__ = ("active", "carts", "churn_at", "last", "memory_slot")

    def __init__(self) -> None:
        """Start with no purchase and no cart."""
        self.last: float | None = None  # ts of the latest purchase processed
        self.active: int | None = None  # label id of the activation, while active
        self.carts: dict[str, tuple[float, int]] | None = None  # cart_id -> (ts, label id)
        self.churn_at: float | None = None  # time of this customer's churn heap entry
        # Wheel slot of the look-back memory; -1 once forgotten (or never set).
        self.memory_slot = -1


class Orders:
    """The order rules over the customers of one partition."""

    def __init__(
        self, config: EngineConfig, store: BucketStore, campaigns: LabelCap, cc: LabelSpace
    ) -> None:
        """Count into ``store``."""
        self._store = store
        self._family = store.family_index(ORDERS)
        self._bucket_s = config.bucket_s
        self._memory_s = config.customer_memory_s
        self._churn_s = config.churn_after_s
        self._abandon_s = config.abandon_after_s
        self._max_carts = config.max_open_carts
        self._lateness_s = config.allowed_lateness_s
        self._campaigns = campaigns
        self._cc = cc
        self.customers: dict[str, Customer] = {}
        self.active: dict[int, int] = {}  # activation label id -> customers active
        self._carts: list[tuple[float, str, str]] = []  # (deadline, customer, cart_id)
        self._churns: list[tuple[float, str]] = []  # (churn time, customer)
        self._forget: Wheel[str] = Wheel(config.bucket_s)
        self.dirty: dict[str, None] = {}

    def refusal(self, event: OrderEvent) -> str | None:
        """Say why ``event`` must be refused before it counts (None: it may count).

        A customer's open carts are one state entry; past ``max_open_carts`` it would grow
        without bound (#12: 130 carts made a 1.3 MB entry the broker refused, and their
        abandonments vanished), so the cart that would pass the cap is refused whole.
        """
        if event.type != "cart_created" or not event.cart_id:
            return None
        customer = self.customers.get(event.customer_id)
        carts = customer.carts if customer is not None else None
        if carts is None or len(carts) < self._max_carts or event.cart_id in carts:
            return None
        return (
            f"customer {event.customer_id[:64]!r} already has {len(carts)} open carts, "
            f"max_open_carts is {self._max_carts}"
        )

    def apply(self, event: OrderEvent, wm: float | None) -> None:
        """Apply one accepted orders event."""
        kind = event.type
        ts = event.ts_s
        channel = event.channel or NONE
        gid = self._cc.gid((self._campaigns.resolve(event.campaign), channel))
        start = int(ts // self._bucket_s) * self._bucket_s
        store = self._store
        family = self._family
        if kind == "purchase":
            self._purchase(event, ts, gid, start)
        elif kind == "refund":
            cell = store.cell(family, start, gid)
            if cell is not None:
                values, at = cell
                values[at + _REFUNDS] += 1
                refunded = at + _REFUNDED
                values[refunded] = MONEY.add(values[refunded], event.amount_reporting or _ZERO)
        elif kind == "cart_created" and event.cart_id:
            customer_id = event.customer_id
            customer = self.customers.get(customer_id)
            if customer is None:
                customer = self.customers[customer_id] = Customer()
            carts = customer.carts
            if carts is None:
                carts = customer.carts = {}
            if event.cart_id in carts:
                return  # already open
            carts[event.cart_id] = (ts, gid)
            heapq.heappush(self._carts, (ts + self._abandon_s, customer_id, event.cart_id))
            cell = store.cell(family, start, gid)
            if cell is not None:
                values, at = cell
                values[at + _CARTS_CREATED] += 1
            self.dirty[customer_id] = None
        # checkout_started: no rule counts it

    def _purchase(self, event: OrderEvent, ts: float, gid: int, start: int) -> None:
        cell = self._store.cell(self._family, start, gid)
        customer_id = event.customer_id
        customer = self.customers.get(customer_id)
        if customer is None:
            customer = self.customers[customer_id] = Customer()
        last = customer.last
        if cell is not None:
            values, at = cell
            values[at + _PURCHASES] += 1
            revenue = at + _REVENUE
            values[revenue] = MONEY.add(values[revenue], event.amount_reporting or _ZERO)
            values[at + _CONVERSIONS] += 1
            if last is not None and last >= ts - self._memory_s:
                values[at + _RETURNING] += 1
            if customer.active is None:
                values[at + _ACTIVATIONS] += 1
        if last is None or ts > last:
            customer.last = last = ts
        if customer.memory_slot < 0:
            customer.memory_slot = self._forget.add(last + self._memory_s, customer_id)
        if customer.active is None:
            customer.active = gid
            self.active[gid] = self.active.get(gid, 0) + 1
            customer.churn_at = churn_at = last + self._churn_s
            heapq.heappush(self._churns, (churn_at, customer_id))
        carts = customer.carts
        if carts:
            cart_id = event.cart_id
            for open_id, (cart_ts, cart_gid) in list(carts.items()):
                if (not cart_id or cart_id == open_id) and (
                    cart_ts <= ts < cart_ts + self._abandon_s
                ):
                    del carts[open_id]  # bought: decided now (#11)
                    bought = self._store.cell(self._family, start, cart_gid)
                    if bought is not None:
                        values, at = bought
                        values[at + _CARTS_PURCHASED] += 1
            if not carts:
                customer.carts = None
        self.dirty[customer_id] = None

    def fire(self, wm: float) -> None:
        """Fire abandonments and churns due at watermark ``wm``; drop forgotten customers."""
        carts = self._carts
        churns = self._churns
        # Both heaps, merged in time order.
        while (carts and carts[0][0] <= wm) or (churns and churns[0][0] <= wm):
            if churns and (not carts or churns[0][0] < carts[0][0]):
                self._churn(*heapq.heappop(churns))
            else:
                self._abandon(*heapq.heappop(carts))
        forget = self._forget
        if wm >= forget.next_due_s:
            for k, keys in forget.due(wm):
                for customer_id in keys:
                    customer = self.customers.get(customer_id)
                    if customer is None or customer.memory_slot != k or customer.last is None:
                        continue
                    expiry = customer.last + self._memory_s
                    if forget.slot(expiry) <= k:
                        customer.memory_slot = -1
                        self._drop_if_done(customer_id, customer)
                    else:
                        customer.memory_slot = forget.add(expiry, customer_id)

    def _abandon(self, deadline: float, customer_id: str, cart_id: str) -> None:
        customer = self.customers.get(customer_id)
        carts = customer.carts if customer is not None else None
        cart = carts.get(cart_id) if carts else None
        if customer is None or carts is None or cart is None:
            return  # bought, or abandoned already
        cart_ts, cart_gid = cart
        if cart_ts + self._abandon_s != deadline:
            return  # a later cart with the same id has its own entry
        del carts[cart_id]
        if not carts:
            customer.carts = None
        # Decided when the watermark reaches the deadline: dated at the stream time that
        # happens (deadline + lateness), so the short windows see it (#11).
        start = int((deadline + self._lateness_s) // self._bucket_s) * self._bucket_s
        cell = self._store.cell(self._family, start, cart_gid)
        if cell is not None:
            values, at = cell
            values[at + _CARTS_ABANDONED] += 1
        self.dirty[customer_id] = None
        self._drop_if_done(customer_id, customer)

    def _churn(self, due: float, customer_id: str) -> None:
        customer = self.customers.get(customer_id)
        if customer is None or customer.churn_at != due or customer.last is None:
            return  # stale: churned and active again since, with another entry
        active = customer.active
        if active is None:
            return
        churn_at = customer.last + self._churn_s
        if churn_at > due:  # bought again since: file it at its new time
            customer.churn_at = churn_at
            heapq.heappush(self._churns, (churn_at, customer_id))
            return
        customer.active = customer.churn_at = None
        self.active[active] -= 1
        start = int(churn_at // self._bucket_s) * self._bucket_s
        cell = self._store.cell(self._family, start, active)
        if cell is not None:
            values, at = cell
            values[at + _CHURNED] += 1
        self.dirty[customer_id] = None
        self._drop_if_done(customer_id, customer)

    def _drop_if_done(self, customer_id: str, customer: Customer) -> None:
        if customer.active is None and not customer.carts and customer.memory_slot < 0:
            del self.customers[customer_id]
            self.dirty[customer_id] = None

    def take_dirty(self, out: list[tuple[bytes, bytes | None]]) -> None:
        """Append the entries of the customers changed since the last call to ``out``."""
        self._encode(self.dirty, out)
        self.dirty.clear()

    def take_all(self, out: list[tuple[bytes, bytes | None]]) -> None:
        """Append the entries of all customers to ``out`` (O(state): for tests and debugging)."""
        self._encode(list(self.customers), out)

    def _encode(self, keys: Iterable[str], out: list[tuple[bytes, bytes | None]]) -> None:
        labels = self._cc.labels
        for customer_id in keys:
            key = codec.text_key(codec.CUSTOMER, customer_id)
            customer = self.customers.get(customer_id)
            if customer is None:
                out.append((key, None))
                continue
            active = None if customer.active is None else list(labels[customer.active])
            carts = None
            if customer.carts:
                carts = [
                    [cart_id, cart_ts, *labels[cart_gid]]
                    for cart_id, (cart_ts, cart_gid) in customer.carts.items()
                ]
            out.append((key, codec.dumps([customer.last, active, carts])))

    def load(self, key_rest: bytes, value: bytes) -> None:
        """Restore one customer entry (key without its ``c|`` prefix)."""
        customer = Customer()
        customer.last, active, carts = codec.loads(value)
        if active is not None:
            customer.active = gid = self._cc.gid(tuple(active))
            self.active[gid] = self.active.get(gid, 0) + 1
        if carts:
            customer.carts = {
                cart_id: (cart_ts, self._cc.gid((campaign, channel)))
                for cart_id, cart_ts, campaign, channel in carts
            }
        self.customers[key_rest.decode()] = customer

    def rebuild_timers(self, wm: float | None) -> None:
        """Schedule every restored cart and churn; file the look-back memories still running."""
        forget = self._forget
        for customer_id, customer in self.customers.items():
            if customer.active is not None and customer.last is not None:
                customer.churn_at = churn_at = customer.last + self._churn_s
                heapq.heappush(self._churns, (churn_at, customer_id))
            for cart_id, (cart_ts, _) in (customer.carts or {}).items():
                heapq.heappush(self._carts, (cart_ts + self._abandon_s, customer_id, cart_id))
            if customer.last is not None:
                k = forget.slot(customer.last + self._memory_s)
                # Forgotten already if its slot was due (see fire): it stays for its
                # activation or carts only.
                if wm is None or wm < (k + 1) * forget.slot_s:
                    customer.memory_slot = k
                    forget.add_to(k, customer_id)

    def active_counts(self) -> dict[int, int]:
        """Return label id -> customers active now (zeros omitted)."""
        return {gid: n for gid, n in self.active.items() if n}
