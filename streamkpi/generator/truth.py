"""The ground truth of a stream: README.md's KPI definitions, counted the slow, obvious way.

This is an independent second implementation of the spec, written to check the engine:
it shares nothing with ``streamkpi.kpis`` but the component names (``spec.py``) and the
wire contract (``streamkpi.events.parse``, which decides validity). Everything after
parsing — duplicates, lateness, watermarks, sessions, carts, customers, e-mail pairs,
timers and buckets — is written here again, plainly, from the README's words.

The definitions are issue #11's: every member of a ratio's population is counted once,
in the bucket of the moment its outcome is decided. A session's engagement, first key
event and first purchase key event are dated by the event that reached them; what it
never reached (bounced, unconverted, without key event) is decided at its end, dated
``last + session_gap_s + allowed_lateness_s``, or at the ``ts`` of the event that
replaces it. A cart is decided bought at the purchase, abandoned at ``ts +
abandon_after_s + allowed_lateness_s``. E-mail opens and clicks are a delivery cohort:
in the bucket of the pair's first delivery, pending until it arrives.

Assumptions: label caps are large enough that nothing folds into ``other`` (folding is
not implemented), and no write falls into a bucket the engine has already expired (the
engine drops those; generated opens come within hours of the delivery). Where the
definitions leave a choice open, the choice is marked ``# SPEC:`` below.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from streamkpi.events import (
    AdSpendEvent,
    EmailEvent,
    Event,
    Kind,
    OrderEvent,
    PageviewEvent,
    ParseContext,
    Rejection,
    SurveyEvent,
    parse,
)
from streamkpi.kpis.spec import COMPONENTS

if TYPE_CHECKING:
    from streamkpi.config import Settings
    from streamkpi.generator.stream import Record

__all__ = ["OUTCOMES", "BucketKey", "Truth", "TruthParams", "bucket_of", "ground_truth"]

OUTCOMES: Final = ("accepted", "invalid", "duplicate", "late")
NONE: Final = "none"  # the label value of an absent campaign, channel or page
ENGAGED_AFTER_MS: Final = 10_000

# (component, bucket start in epoch seconds, label values)
BucketKey = tuple[str, int, tuple[str, ...]]
Labels = tuple[str, str]  # (campaign, channel)

_BUCKETED: Final = frozenset(c.name for c in COMPONENTS if not c.stock)
_MONEY: Final = frozenset(c.name for c in COMPONENTS if c.unit == "currency")


@dataclass(frozen=True)
class TruthParams:
    """The Settings the truth counts with (defaults: Settings' defaults), plus its clock.

    ``now_s`` is the clock of the future-ts check. ``final_watermark_s``, if given, is
    where every topic-partition's watermark is raised after the last record (as the idle
    advance does when traffic stops), firing the timers then due.
    """

    now_s: float
    final_watermark_s: float | None = None
    bucket_s: int = 60
    allowed_lateness_s: float = 300.0
    dedup_horizon_s: float = 3600.0
    session_gap_s: float = 1800.0
    visitor_memory_s: float = 30 * 86_400.0
    email_memory_s: float = 30 * 86_400.0
    customer_memory_s: float = 400 * 86_400.0
    churn_after_s: float = 90 * 86_400.0
    abandon_after_s: float = 1800.0
    lead_events: Collection[str] = ("signup",)
    purchase_event: str = "purchase"
    reporting_currency: str = "EUR"
    rates: Mapping[str, Decimal] = field(
        default_factory=lambda: MappingProxyType({"EUR": Decimal(1)})
    )
    max_event_bytes: int = 65_536
    max_future_s: float = 300.0

    @classmethod
    def from_settings(
        cls, settings: Settings, *, now_s: float, final_watermark_s: float | None = None
    ) -> TruthParams:
        """Return the params a worker running with ``settings`` counts with."""
        return cls(
            now_s=now_s,
            final_watermark_s=final_watermark_s,
            bucket_s=settings.bucket_s,
            allowed_lateness_s=settings.allowed_lateness_s,
            dedup_horizon_s=settings.dedup_horizon_s,
            session_gap_s=settings.session_gap_s,
            visitor_memory_s=settings.visitor_memory_s,
            email_memory_s=settings.email_memory_s,
            customer_memory_s=settings.customer_memory_s,
            churn_after_s=settings.churn_after_s,
            abandon_after_s=settings.abandon_after_s,
            lead_events=settings.lead_events,
            purchase_event=settings.purchase_event,
            reporting_currency=settings.reporting_currency,
            rates=MappingProxyType(dict(settings.currency_rates)),
            max_event_bytes=settings.max_event_bytes,
            max_future_s=settings.max_future_s,
        )


@dataclass
class Truth:
    """What a correct engine reports for a stream.

    ``outcomes`` has all 20 (kind, outcome) pairs, zeros included; ``buckets`` and
    ``invalid_reasons`` only non-zero cells. Bucket labels are ``(campaign, channel)``,
    or ``(page,)`` for the landing-page components. ``active_customers`` is the stock at
    the end, by activation labels.
    """

    params: TruthParams
    outcomes: dict[tuple[str, str], int]
    buckets: dict[BucketKey, int | Decimal]
    active_customers: dict[tuple[str, str], int]
    invalid_reasons: dict[tuple[str, str], int]
    # The last watermark of each (kind, partition); -inf for one that accepted nothing.
    watermarks: dict[tuple[str, int], float]

    def window_sum(
        self, component: str, labels: tuple[str, ...], window_s: int, reference_s: float
    ) -> int | Decimal:
        """Return the sum of the ``window_s / bucket_s`` buckets up to ``reference_s``'s."""
        bucket_s = self.params.bucket_s
        if window_s <= 0 or window_s % bucket_s:
            raise ValueError(f"window_s {window_s} is not a whole number of {bucket_s}s buckets")
        last = bucket_of(reference_s, bucket_s)
        first = last - window_s + bucket_s
        total: int | Decimal = Decimal(0) if component in _MONEY else 0
        for start in range(first, last + 1, bucket_s):
            total += self.buckets.get((component, start, labels), 0)
        return total

    def active_at_window_start(
        self, labels: tuple[str, str], window_s: int, reference_s: float
    ) -> int:
        """Return ``active_customers`` of a window: now, minus its activations, plus its churns."""
        activations = self.window_sum("customer_activations", labels, window_s, reference_s)
        churns = self.window_sum("churned_customers", labels, window_s, reference_s)
        return self.active_customers.get(labels, 0) - int(activations) + int(churns)

    def total(self, component: str) -> int | Decimal:
        """Return a component summed over every bucket and label."""
        total: int | Decimal = Decimal(0) if component in _MONEY else 0
        for (name, _, _), value in self.buckets.items():
            if name == component:
                total += value
        return total


def bucket_of(ts_s: float, bucket_s: int) -> int:
    """Return the start (epoch seconds) of the bucket holding ``ts_s``."""
    return math.floor(ts_s / bucket_s) * bucket_s


def _label(value: str | None) -> str:
    # SPEC: an empty string counts as absent, like a null (README only says "absent: none").
    return str(value) if value else NONE  # str(): a Channel is a StrEnum


# ---------------------------------------------------------------------------------------
# Per-entity state


@dataclass
class _Session:
    visitor_id: str
    session_id: str | None
    start_s: float
    last_s: float
    labels: Labels
    page: str
    page_views: int = 0
    engaged_ms: int = 0
    engaged: bool = False
    key_event: bool = False  # any key event
    converted: bool = False  # a key event named purchase_event
    ended: bool = False  # by its timer or replaced: decided


@dataclass
class _EmailPair:
    """A (recipient, campaign) pair; a flag set while undelivered is a pending count."""

    latest_s: float
    delivered_s: float | None = None  # the ts of its first delivered event
    opened: bool = False  # a human open, or a click
    machine_opened: bool = False
    clicked: bool = False


@dataclass
class _Customer:
    customer_id: str
    labels: Labels  # the labels of the activation
    latest_purchase_s: float
    active: bool = True


@dataclass
class _Cart:
    customer_id: str
    cart_id: str
    ts_s: float
    labels: Labels
    open: bool = True


@dataclass(order=True)
class _Timer:
    time_s: float
    seq: int
    target: _Session | _Cart | _Customer = field(compare=False)


class _TopicPartition:
    """The watermark, remembered ids, timers and entity state of one topic-partition."""

    def __init__(self, kind: Kind, partition: int, counter: _Counter) -> None:
        self.kind = kind
        self.partition = partition
        self.counter = counter
        self.params = counter.params
        self.watermark_s = -math.inf
        self.seen_ids: dict[str, float] = {}  # event_id -> ts of the accepted event
        self.timers: list[_Timer] = []
        self.timer_seq = 0
        # pageviews
        self.sessions: dict[str, _Session] = {}
        self.visitor_latest_s: dict[str, float] = {}
        # emails
        self.pairs: dict[tuple[str, str], _EmailPair] = {}
        # orders
        self.customers: dict[str, _Customer] = {}
        self.customer_latest_purchase_s: dict[str, float] = {}
        self.carts: dict[str, list[_Cart]] = {}  # customer -> open carts, oldest first

    # -- the step order of README "Time, order and state"

    def process(self, value: bytes, ctx: ParseContext) -> None:
        """Process one record: parse, duplicate, late, apply, watermark, timers."""
        kind = str(self.kind)
        event = parse(self.kind, value, ctx, self.params.now_s)
        if isinstance(event, Rejection):
            self.counter.outcome(kind, "invalid")
            self.counter.invalid(kind, str(event.reason))
            return
        ts = event.ts_s
        remembered = self.seen_ids.get(event.event_id)
        # SPEC: "remembered until the watermark passes ts + dedup_horizon_s": forgotten
        # once watermark > ts + horizon (strictly); at equality it is still a duplicate.
        if (
            remembered is not None
            and not self.watermark_s > remembered + self.params.dedup_horizon_s
        ):
            self.counter.outcome(kind, "duplicate")
            return
        # "below the watermark": a ts equal to it is on time.
        if ts < self.watermark_s:
            self.counter.outcome(kind, "late")
            return
        self.counter.outcome(kind, "accepted")
        self.seen_ids[event.event_id] = ts
        self.apply(event)
        self.raise_watermark(ts - self.params.allowed_lateness_s)

    def raise_watermark(self, candidate_s: float) -> None:
        """Raise the watermark to ``candidate_s`` if higher, then fire the due timers."""
        if candidate_s > self.watermark_s:
            self.watermark_s = candidate_s
        while self.timers and self.timers[0].time_s <= self.watermark_s:
            timer = heapq.heappop(self.timers)
            self.fire(timer)

    def schedule(self, time_s: float, target: _Session | _Cart | _Customer) -> None:
        """Add a timer; a target's older timers become stale (checked when they pop)."""
        self.timer_seq += 1
        heapq.heappush(self.timers, _Timer(time_s, self.timer_seq, target))

    def fire(self, timer: _Timer) -> None:
        """Run a due timer, unless the state it was set for has moved on since."""
        target = timer.target
        params = self.params
        if isinstance(target, _Session):
            if not target.ended and timer.time_s == target.last_s + params.session_gap_s:
                del self.sessions[target.visitor_id]
                # The event time the watermark has reached when it ends the session.
                self.decide(target, timer.time_s + params.allowed_lateness_s)
        elif isinstance(target, _Cart):
            if target.open:
                target.open = False
                self.carts[target.customer_id].remove(target)
                deadline_s = target.ts_s + params.abandon_after_s
                self.counter.add(
                    "carts_abandoned", deadline_s + params.allowed_lateness_s, target.labels
                )
        elif target.active and timer.time_s == target.latest_purchase_s + params.churn_after_s:
            target.active = False
            del self.customers[target.customer_id]
            # "in the bucket of that time": the churn time, not the watermark that fired it.
            self.counter.add("churned_customers", timer.time_s, target.labels)

    def apply(self, event: Event) -> None:
        """Apply an accepted event's rules."""
        if isinstance(event, PageviewEvent):
            self.apply_pageview(event)
        elif isinstance(event, EmailEvent):
            self.apply_email(event)
        elif isinstance(event, OrderEvent):
            self.apply_order(event)
        elif isinstance(event, AdSpendEvent):
            assert event.cost_reporting is not None  # parse computes it
            self.counter.add(
                "ad_spend", event.ts_s, (event.campaign, str(event.channel)), event.cost_reporting
            )
        else:
            assert isinstance(event, SurveyEvent)
            labels = (_label(event.campaign), NONE)
            self.counter.add("nps_responses", event.ts_s, labels)
            if event.score >= 9:
                self.counter.add("nps_promoters", event.ts_s, labels)
            elif event.score <= 6:
                self.counter.add("nps_detractors", event.ts_s, labels)

    # -- pageviews

    def apply_pageview(self, event: PageviewEvent) -> None:
        """README "Pageviews: sessions and what hangs off them", steps 1-5."""
        params, add = self.params, self.counter.add
        t = event.ts_s
        visitor = event.visitor_id
        # SPEC: an empty session_id counts as absent.
        session_id = event.session_id or None
        session = self.sessions.get(visitor)
        joins = session is not None and (
            (session.session_id is not None and session_id == session.session_id)
            or (
                session.session_id is None
                and session_id is None
                and t < session.last_s + params.session_gap_s
            )
        )
        if session is not None and joins:
            if t > session.last_s:
                session.last_s = t
                self.schedule(t + params.session_gap_s, session)
        else:
            if session is not None:
                # SPEC: "replaced" = any new session of v while the old one is still open
                # (its timer has not fired): another session_id, a session_id on one side
                # only, or no ids and t >= last + gap. Decided at t, even when t is
                # earlier than the old session's start or later than its natural end.
                self.decide(session, t)  # and its timer goes stale
            labels = (_label(event.campaign), str(event.channel))
            session = _Session(visitor, session_id, t, t, labels, _label(event.page))
            self.sessions[visitor] = session
            self.schedule(t + params.session_gap_s, session)
            add("sessions", t, labels)
            add("landing_sessions", t, (session.page,))
            # SPEC: "an event of v ... processed before" = an accepted pageviews event of
            # any type on this topic-partition; its ts may be later than t.
            latest = self.visitor_latest_s.get(visitor)
            if latest is None or latest < t - params.visitor_memory_s:
                add("new_visitors", t, labels)
        self.visitor_latest_s[visitor] = max(self.visitor_latest_s.get(visitor, t), t)

        if event.type == "page_view":
            add("pageviews", t, session.labels)
            session.page_views += 1
            if session.page_views >= 2:
                self.engage(session, t)
        elif event.type == "engagement":
            session.engaged_ms += event.engaged_ms or 0
            if session.engaged_ms >= ENGAGED_AFTER_MS:
                self.engage(session, t)
        else:
            self.engage(session, t)
            if not session.key_event:
                session.key_event = True
                add("key_event_sessions", t, session.labels)
            # SPEC: the purchase key event's name matches purchase_event exactly, like leads.
            if event.name == params.purchase_event and not session.converted:
                session.converted = True
                add("converted_sessions", t, session.labels)
            # SPEC: every lead key event counts (not once per session); names match exactly.
            if event.name in params.lead_events:
                add("leads", t, session.labels)
                add("conversions", t, session.labels)

    def engage(self, session: _Session, ts_s: float) -> None:
        """Step 4: the first engagement counts, in the bucket of the event that engaged."""
        if not session.engaged:
            session.engaged = True
            self.counter.add("engaged_sessions", ts_s, session.labels)
            self.counter.add("landing_engaged_sessions", ts_s, (session.page,))

    def decide(self, session: _Session, ts_s: float) -> None:
        """End ``session``: count what it never reached in the bucket of ``ts_s``."""
        session.ended = True
        add = self.counter.add
        if not session.engaged:
            add("bounced_sessions", ts_s, session.labels)
            add("landing_bounced_sessions", ts_s, (session.page,))
        if not session.converted:
            add("unconverted_sessions", ts_s, session.labels)
        if not session.key_event:
            add("sessions_without_key_event", ts_s, session.labels)

    # -- e-mails

    def apply_email(self, event: EmailEvent) -> None:
        """README "E-mails"."""
        t = event.ts_s
        labels = (event.campaign, "email")
        key = (event.recipient_id, event.campaign)
        pair = self.pairs.get(key)
        # SPEC: "more than email_memory_s after the latest ts seen": strictly more; any
        # accepted event of the pair (sent, delivered... too) counts as seen. Dropping
        # the pair once the watermark passes latest + memory changes nothing: every
        # later on-time event is more than email_memory_s after it anyway.
        if pair is None or t > pair.latest_s + self.params.email_memory_s:
            pair = _EmailPair(latest_s=t)
            self.pairs[key] = pair
        pair.latest_s = max(pair.latest_s, t)
        simple = {
            "sent": "emails_sent",
            "delivered": "emails_delivered",
            "bounced": "emails_bounced",
            "unsubscribed": "email_unsubscribes",
            "complained": "email_complaints",
        }
        if event.type in simple:
            self.counter.add(simple[event.type], t, labels)
        if event.type == "delivered" and pair.delivered_s is None:
            pair.delivered_s = t
            # The pending opens and clicks join the cohort of this first delivery.
            for pending, name in (
                (pair.opened, "email_unique_opens"),
                (pair.machine_opened, "email_machine_opens"),
                (pair.clicked, "email_unique_clicks"),
            ):
                if pending:
                    self.counter.add(name, t, labels)
        elif event.type == "opened":
            if event.machine_open:
                if not pair.machine_opened:
                    pair.machine_opened = True
                    self.cohort(pair, "email_machine_opens", labels)
            elif not pair.opened:
                pair.opened = True
                self.cohort(pair, "email_unique_opens", labels)
        elif event.type == "clicked" and not pair.clicked:
            pair.clicked = True
            self.cohort(pair, "email_unique_clicks", labels)
            if not pair.opened:  # a click proves a human open (images were blocked)
                pair.opened = True
                self.cohort(pair, "email_unique_opens", labels)

    def cohort(self, pair: _EmailPair, component: str, labels: Labels) -> None:
        """Count a pair's first open or click in its delivery's bucket; pending if none yet."""
        if pair.delivered_s is not None:
            self.counter.add(component, pair.delivered_s, labels)

    # -- orders

    def apply_order(self, event: OrderEvent) -> None:
        """README "Orders"."""
        params, add = self.params, self.counter.add
        t = event.ts_s
        customer_id = event.customer_id
        labels = (_label(event.campaign), _label(event.channel))
        # SPEC: an empty cart_id counts as absent.
        cart_id = event.cart_id or None
        if event.type == "purchase":
            assert event.amount_reporting is not None  # parse requires it
            add("purchases", t, labels)
            add("revenue", t, labels, event.amount_reporting)
            add("conversions", t, labels)
            latest = self.customer_latest_purchase_s.get(customer_id)
            if latest is not None and latest >= t - params.customer_memory_s:
                add("returning_purchases", t, labels)
            self.customer_latest_purchase_s[customer_id] = max(latest or t, t)
            # SPEC: "active" is the timer state, not ts arithmetic: a purchase arriving
            # after latest + churn_after but before the watermark reached it extends.
            customer = self.customers.get(customer_id)
            if customer is None:
                customer = _Customer(customer_id, labels, t)
                self.customers[customer_id] = customer
                add("customer_activations", t, labels)
                self.schedule(t + params.churn_after_s, customer)
            elif t > customer.latest_purchase_s:
                customer.latest_purchase_s = t
                self.schedule(t + params.churn_after_s, customer)
            # SPEC: a purchase without cart_id closes EVERY open cart of the customer
            # whose window holds t (README says "closes it", as if there were one).
            open_carts = self.carts.get(customer_id, [])
            for cart in list(open_carts):
                same_cart = cart_id is None or cart.cart_id == cart_id
                if same_cart and cart.ts_s <= t < cart.ts_s + params.abandon_after_s:
                    cart.open = False
                    open_carts.remove(cart)
                    add("carts_purchased", t, cart.labels)
        elif event.type == "refund":
            assert event.amount_reporting is not None
            add("refunds", t, labels)
            add("refunded_revenue", t, labels, event.amount_reporting)
        elif event.type == "cart_created" and cart_id is not None:
            # SPEC: carts are identified by (customer_id, cart_id); a cart_id whose cart
            # was bought or abandoned opens (and counts) a new cart.
            open_carts = self.carts.setdefault(customer_id, [])
            if not any(cart.cart_id == cart_id for cart in open_carts):
                cart = _Cart(customer_id, cart_id, t, labels)
                open_carts.append(cart)
                add("carts_created", t, labels)
                self.schedule(t + params.abandon_after_s, cart)
        # checkout_started, and cart_created without cart_id, count nothing.


class _Counter:
    """The outcome, reason and bucket tallies shared by every topic-partition."""

    def __init__(self, params: TruthParams) -> None:
        self.params = params
        self.outcomes = {(str(kind), outcome): 0 for kind in Kind for outcome in OUTCOMES}
        self.reasons: dict[tuple[str, str], int] = {}
        self.buckets: dict[BucketKey, int | Decimal] = {}

    def outcome(self, kind: str, outcome: str) -> None:
        self.outcomes[kind, outcome] += 1

    def invalid(self, kind: str, reason: str) -> None:
        self.reasons[kind, reason] = self.reasons.get((kind, reason), 0) + 1

    def add(
        self,
        component: str,
        ts_s: float,
        labels: tuple[str, ...],
        amount: int | Decimal = 1,
    ) -> None:
        """Add ``amount`` to ``component`` in the bucket of ``ts_s``."""
        assert component in _BUCKETED, component
        key = (component, bucket_of(ts_s, self.params.bucket_s), labels)
        zero: int | Decimal = Decimal(0) if component in _MONEY else 0
        self.buckets[key] = self.buckets.get(key, zero) + amount


def ground_truth(records: Sequence[Record], params: TruthParams) -> Truth:
    """Count ``records`` (in production order) as README.md's KPI definitions say."""
    ctx = ParseContext(
        max_bytes=params.max_event_bytes,
        max_future_s=params.max_future_s,
        rates=params.rates,
        reporting_currency=params.reporting_currency,
    )
    counter = _Counter(params)
    partitions: dict[tuple[Kind, int], _TopicPartition] = {}
    for record in records:
        where = (record.kind, record.partition)
        if where not in partitions:
            partitions[where] = _TopicPartition(record.kind, record.partition, counter)
        partitions[where].process(record.value, ctx)
    if params.final_watermark_s is not None:
        for topic_partition in partitions.values():
            topic_partition.raise_watermark(params.final_watermark_s)
    # Sessions and carts still open here are undecided: their bounced, unconverted,
    # without-key-event and abandoned outcomes are counted nowhere.

    active: dict[tuple[str, str], int] = {}
    for topic_partition in partitions.values():
        for customer in topic_partition.customers.values():
            active[customer.labels] = active.get(customer.labels, 0) + 1
    return Truth(
        params=params,
        outcomes=counter.outcomes,
        buckets={key: value for key, value in counter.buckets.items() if value != 0},
        active_customers=active,
        invalid_reasons=counter.reasons,
        watermarks={(str(k), p): tp.watermark_s for (k, p), tp in partitions.items()},
    )
