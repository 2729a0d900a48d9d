"""A deterministic synthetic stream of the five source topics, in production order.

Entities are simulated one by one in event time (visitors with sessions, e-mail campaigns,
shoppers with carts, ad spend ticks, survey answers); the events are then put in
production order with a bounded disorder, and the faults of real producers are mixed in:
retries (byte-identical duplicates), late deliveries and invalid messages. Every random
draw comes from ``random.Random`` instances seeded from ``GenConfig.seed``: the same
config gives the same bytes, on any machine, at any time.
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final

from streamkpi.events import Kind
from streamkpi.generator.incidents import VISIT_CONTEXT_KINDS, Incident, alter

__all__ = [
    "CURRENCY_RATES",
    "DEFAULT_START_S",
    "ENTITY_FIELD",
    "OTHER_REFERRERS",
    "SEARCH_REFERRERS",
    "SOCIAL_REFERRERS",
    "VISIT_FUNNEL",
    "Funnel",
    "GenConfig",
    "Record",
    "Sim",
    "adspend_tick",
    "dump_json",
    "emit_mailing",
    "emit_shopping",
    "emit_visit",
    "generate",
    "invalid_value",
    "partition_for",
    "survey_answer",
    "ts_value",
]

# The rates the stream's currencies need (JPY is left out on purpose: it is the
# generator's unknown currency). Multipliers into EUR, the reporting currency.
CURRENCY_RATES: Final[Mapping[str, Decimal]] = MappingProxyType(
    {"EUR": Decimal(1), "USD": Decimal("0.92"), "GBP": Decimal("1.17")}
)

# The field a topic's messages are keyed by (README, "Keys").
ENTITY_FIELD: Final[Mapping[Kind, str]] = MappingProxyType(
    {
        Kind.pageviews: "visitor_id",
        Kind.emails: "recipient_id",
        Kind.orders: "customer_id",
        Kind.adspend: "campaign",
        Kind.surveys: "respondent_id",
    }
)

_WEB_CAMPAIGN_NAMES: Final = (
    "spring_sale",
    "black_friday",
    "brand_search",
    "retargeting_q4",
    "influencer_x",
    "webinar_ai",
)
_PAGES: Final = (
    "/",
    "/pricing",
    "/products/shoes",
    "/products/bags",
    "/products/hats",
    "/blog/black-friday-guide",
    "/blog/size-chart",
    "/signup",
    "/cart",
    "/checkout",
    "/about",
    "/contact",
)
_LANDING_PAGES: Final = _PAGES[:7]
_SITE: Final = "https://shop.example.com"
SEARCH_REFERRERS: Final = (
    "https://www.google.com/search?q=shoes",
    "https://www.bing.com/search?q=bags",
    "https://duckduckgo.com/",
)
SOCIAL_REFERRERS: Final = (
    "https://t.co/x1y2z3",
    "https://www.facebook.com/",
    "https://l.instagram.com/",
)
OTHER_REFERRERS: Final = ("https://blog.example.org/review", "https://news.example.net/deals")


DEFAULT_START_S: Final = 1_764_158_400.0  # 2025-11-26T12:00:00Z


def partition_for(key: bytes, partitions: int) -> int:
    """Return the partition of ``key``: a stable hash, the same in every process."""
    return zlib.crc32(key) % partitions


@dataclass(frozen=True)
class Record:
    """One Kafka message of ``kind``, to be produced to exactly ``partition``, in list order."""

    kind: Kind
    partition: int
    key: bytes
    value: bytes


@dataclass(frozen=True)
class GenConfig:
    """What to generate; the defaults give about 100,000 records over six hours.

    The ground truth (``streamkpi.generator.truth``) of a generated stream holds for the
    engine only if the worker's Settings agree with these assumptions:

    * ``topic_partitions == partitions`` (records carry their partition; the producer must
      send each one exactly there);
    * ``allowed_lateness_s`` equal to this config's: normal events are shuffled by less
      than ``disorder_s`` (< ``allowed_lateness_s``), so none of them is late, and the
      injected late events lie 60 s to 1 h beyond the lateness;
    * ``currency_rates`` holds exactly ``CURRENCY_RATES`` for EUR, USD and GBP, with
      ``reporting_currency`` EUR, and no rate for JPY (the invalid ``unknown_currency``);
    * ``max_event_bytes`` equal to this config's (the ``too_large`` messages exceed it
      by a few hundred bytes);
    * the worker's clock at consumption is at least ``start_s + duration_s -
      max_future_s`` (else normal events are ``future_ts``) and less than 50 years after
      ``start_s`` (the ``future_ts`` events are dated 50 years ahead). Pass that clock
      as ``TruthParams.now_s``; and if the worker's idle advance may have moved the
      watermarks to ``now - allowed_lateness_s`` before it is read, pass that as
      ``TruthParams.final_watermark_s`` (with ``start_s`` far in the past it fires every
      timer, churn included);
    * label caps large enough not to fold: at most ``web_campaigns + email_campaigns``
      campaigns plus ``none``, and 12 pages plus ``none`` (the defaults, 50 and 50, do);
    * ``lead_events`` contains ``signup`` (the generator's other key events are
      ``purchase`` and ``add_to_cart``).

    E-mail campaign ``i`` of ``N`` (named ``c07``, ``c08``, ...) is sent from ``start_s +
    duration_s * (2i + 1) / (2N + 2)``, to 60 % of the recipients at uniformly random
    times over the next 10 minutes; events after the stream's end are cut. ``email_bounce_rate`` of
    the e-mails bounce. ``incidents`` (:class:`streamkpi.generator.incidents.Incident`, the
    same as ``streamkpi generate --incident``; ``at_s`` counts from ``start_s``) alter the
    events as the live generator's do: ``deliverability-drop`` turns deliveries of the
    recipients it hits into hard bounces and drops what would follow them,
    ``traffic-stop`` drops events, ``ad-overspend`` multiplies costs, ``nps-drop`` lowers
    scores; ``conversion-drop``, ``checkout-broken`` and ``landing-broken`` need the live
    generator's visit context and are refused here. With the defaults (no incident, 5 %
    bounces) the stream is byte for byte what it was before these fields existed.

    Per normal event, ``invalid_rate`` adds a malformed message after it and
    ``late_rate`` an event dated well behind its partition's watermark; then
    ``duplicate_rate`` of all records are re-sent byte for byte (a producer retry: half
    of them immediately, half 50 to 500 records later). Normal events keep their
    per-entity order mostly, but one in ten overtakes or lags its neighbours.
    """

    seed: int = 1
    start_s: float = DEFAULT_START_S
    duration_s: float = 6 * 3600.0
    partitions: int = 4
    web_campaigns: int = 6
    email_campaigns: int = 3
    visitors: int = 12_000
    recipients: int = 6_500
    customers: int = 3_000
    respondents: int = 2_000
    adspend_every_s: float = 300.0
    duplicate_rate: float = 0.02
    disorder_s: float = 120.0
    late_rate: float = 0.005
    invalid_rate: float = 0.01
    allowed_lateness_s: float = 300.0
    max_event_bytes: int = 65_536
    email_bounce_rate: float = 0.05
    incidents: tuple[Incident, ...] = ()

    @classmethod
    def for_test(
        cls, seed: int = 1, *, start_s: float = DEFAULT_START_S, partitions: int = 4
    ) -> GenConfig:
        """Return the config of the exactness tests: >= 100,000 records, every fault mixed in."""
        return cls(seed=seed, start_s=start_s, partitions=partitions)

    def __post_init__(self) -> None:
        """Refuse a config whose stream would not mean what the fields say."""
        if self.partitions < 1:
            raise ValueError("partitions must be at least 1")
        if self.duration_s <= 0:
            raise ValueError("duration_s must be positive")
        if not 0 <= self.disorder_s < self.allowed_lateness_s:
            raise ValueError("disorder_s must be in [0, allowed_lateness_s)")
        if not 1 <= self.web_campaigns <= 99 or not 0 <= self.email_campaigns <= 90:
            raise ValueError("web_campaigns must be 1..99 and email_campaigns 0..90")
        for name in ("duplicate_rate", "late_rate", "invalid_rate"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1)")
        for name in ("visitors", "recipients", "customers", "respondents"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.adspend_every_s <= 0:
            raise ValueError("adspend_every_s must be positive")
        if not 0 <= self.email_bounce_rate <= 1:
            raise ValueError("email_bounce_rate must be in [0, 1]")
        for incident in self.incidents:
            if not isinstance(incident, Incident):
                raise ValueError(f"not an incident: {incident!r}")
            if incident.kind in VISIT_CONTEXT_KINDS:
                raise ValueError(
                    f"{incident.kind} needs the live generator's visit context "
                    "(streamkpi generate); the batch stream takes deliverability-drop, "
                    "traffic-stop, ad-overspend and nps-drop"
                )


@dataclass(slots=True)
class _Event:
    """A normal event before it gets its id and bytes: ``fields`` lacks event_id and ts."""

    kind: Kind
    key: str
    ts_ms: int
    fields: dict[str, Any]
    # Delivery delay added to ts for the production order; always < disorder_s.
    jitter_ms: int


class Sim:
    """Shared plumbing of the entity simulations: the time span, the event list."""

    def __init__(self, config: GenConfig, rng: random.Random) -> None:
        self.rng = rng
        self.start_ms = round(config.start_s * 1000)
        self.end_ms = self.start_ms + round(config.duration_s * 1000)
        self.disorder_ms = round(config.disorder_s * 1000)
        self.events: list[_Event] = []
        self.web_campaigns = [_web_campaign_name(i) for i in range(config.web_campaigns)]
        self.email_campaigns = [f"c{7 + i:02d}" for i in range(config.email_campaigns)]
        self.email_bounce_rate = config.email_bounce_rate
        self.incidents = config.incidents
        # Cart and order ids: the live generator prefixes them so that runs never collide.
        self.id_prefix = ""
        self.carts = 0
        self.orders = 0

    def jitter(self) -> int:
        """Return a delivery delay in [0, disorder_s)."""
        return self.rng.randrange(self.disorder_ms) if self.disorder_ms else 0

    def uniform_ts(self, margin_ms: int = 0) -> int:
        """Return a time in the span, ``margin_ms`` before its end at the latest."""
        return self.start_ms + self.rng.randrange(max(1, self.end_ms - self.start_ms - margin_ms))

    def emit(
        self, kind: Kind, key: str, ts_ms: int, fields: dict[str, Any], jitter_ms: int
    ) -> None:
        """Add a normal event; events after the span are cut (the stream ends there).

        The incidents alter or drop it first, as in the live generator (one ``alter``).
        """
        if not self.start_ms <= ts_ms <= self.end_ms:
            return
        if self.incidents:
            altered = alter(
                self.incidents,
                kind,
                fields,
                elapsed_s=(ts_ms - self.start_ms) / 1000,
                campaign=fields.get("campaign"),
                entity=key,
            )
            if altered is None:
                return
            fields = altered
        self.events.append(_Event(kind, key, ts_ms, fields, jitter_ms))

    def burst_jitter(self) -> Callable[[], int]:
        """Return a jitter source for one burst (a visit, a shopping episode).

        One device's events mostly travel together, so they share one delay and keep
        their order; one in ten takes its own way and can overtake its neighbours.
        """
        shared = self.jitter()
        return lambda: self.jitter() if self.rng.random() < 0.1 else shared


def _web_campaign_name(index: int) -> str:
    if index < len(_WEB_CAMPAIGN_NAMES):
        return _WEB_CAMPAIGN_NAMES[index]
    return f"w{index:02d}"


def _amount(rng: random.Random, low_cents: int, high_cents: int) -> str | int | float:
    """Return an amount, mostly as a decimal string, sometimes as a JSON number."""
    cents = rng.randint(low_cents, high_cents)
    draw = rng.random()
    if draw < 0.05:
        return cents // 100  # a whole number
    if draw < 0.08:
        return round(cents / 100, 1)  # a JSON float, which parse converts as it does
    return f"{cents // 100}.{cents % 100:02d}"


# ---------------------------------------------------------------------------------------
# Pageviews


def _traffic_source(sim: Sim) -> dict[str, Any]:
    """Return the acquisition fields of a landing hit: UTM tags, referrer or channel."""
    rng = sim.rng
    draw = rng.random()
    web = sim.web_campaigns
    if draw < 0.15:
        return {}  # direct
    if draw < 0.35:
        return {"referrer": rng.choice(SEARCH_REFERRERS)}
    if draw < 0.43:
        return {"referrer": rng.choice(SOCIAL_REFERRERS)}
    if draw < 0.50:
        return {"referrer": rng.choice(OTHER_REFERRERS)}
    if draw < 0.75:
        medium = rng.choice(("cpc", "cpc", "display", "paid_social", "CPM"))
        source = rng.choice(("google", "bing", "facebook"))
        return {"utm_source": source, "utm_medium": medium, "campaign": rng.choice(web)}
    if draw < 0.85 and sim.email_campaigns:
        campaign = rng.choice(sim.email_campaigns)
        return {"utm_source": "newsletter", "utm_medium": "email", "campaign": campaign}
    if draw < 0.90:
        return {"utm_source": "instagram", "utm_medium": "social", "campaign": web[-1]}
    if draw < 0.97:
        channel = rng.choice(("Paid", "social", "REFERRAL", "other", "organic"))
        fields: dict[str, Any] = {"channel": channel}
        if rng.random() < 0.5:
            fields["campaign"] = rng.choice(web)
        return fields
    return {"utm_source": "partner_site"}  # a source alone: "other", as GA4 does


@dataclass(frozen=True)
class Funnel:
    """How far a visit goes; the defaults are the batch stream's (the live one varies them).

    ``page_weights[i]`` weighs a visit of ``i + 1`` pages; ``engage`` is the chance of an
    engagement event after each page; the others, of each key event at the visit's end.
    """

    page_weights: tuple[int, ...] = (40, 18, 12, 9, 7, 6, 4, 4)
    engage: float = 0.25
    signup: float = 0.06
    add_to_cart: float = 0.05
    purchase: float = 0.03


VISIT_FUNNEL: Final = Funnel()


def emit_visit(
    sim: Sim,
    visitor: str,
    t_ms: int,
    session_id: str | None,
    *,
    funnel: Funnel = VISIT_FUNNEL,
    source: dict[str, Any] | None = None,
) -> int:
    """Emit one visit of ``visitor`` from ``t_ms``; return the time of its last event.

    ``source`` holds the landing hit's acquisition fields; drawn by ``_traffic_source``
    when None.
    """
    rng = sim.rng
    jitter = sim.burst_jitter()
    n_pages = rng.choices(range(1, len(funnel.page_weights) + 1), weights=funnel.page_weights)[0]
    page = rng.choice(_LANDING_PAGES)
    for index in range(n_pages):
        fields: dict[str, Any] = {"visitor_id": visitor}
        if index == 0:
            fields.update(_traffic_source(sim) if source is None else source)
            if rng.random() < 0.03:
                page = ""  # no page field at all: the landing page is "none"
        else:
            t_ms += rng.randint(3_000, 180_000)
            fields["referrer"] = _SITE + (page or "/")
            page = rng.choice(_PAGES)
            if session_id is not None and rng.random() < 0.02:
                session_id += "b"  # the app restarted: a new session id mid-visit
        if page:
            fields["page"] = page
        if session_id is not None:
            fields["session_id"] = session_id
        if rng.random() < 0.2:
            fields["type"] = "page_view"  # explicit, the default otherwise
        sim.emit(Kind.pageviews, visitor, t_ms, fields, jitter())
        if rng.random() < funnel.engage:
            engaged_ms = rng.randint(500, 20_000)
            t_ms += engaged_ms
            engagement: dict[str, Any] = {
                "visitor_id": visitor,
                "type": "engagement",
                "engaged_ms": engaged_ms,
            }
            if session_id is not None:
                engagement["session_id"] = session_id
            sim.emit(Kind.pageviews, visitor, t_ms, engagement, jitter())
    key_events = (
        ("signup", funnel.signup),
        ("add_to_cart", funnel.add_to_cart),
        ("purchase", funnel.purchase),
    )
    for name, probability in key_events:
        if rng.random() < probability:
            t_ms += rng.randint(2_000, 30_000)
            key_event: dict[str, Any] = {"visitor_id": visitor, "type": "key_event", "name": name}
            if session_id is not None:
                key_event["session_id"] = session_id
            sim.emit(Kind.pageviews, visitor, t_ms, key_event, jitter())
    return t_ms


def _pageviews(sim: Sim, visitors: int) -> None:
    rng = sim.rng
    for index in range(visitors):
        visitor = f"v{index:06d}"
        uses_session_ids = rng.random() < 0.3
        n_visits = rng.choices((1, 2, 3), weights=(65, 25, 10))[0]
        t_ms = sim.uniform_ts(margin_ms=600_000)
        for visit in range(n_visits):
            session_id = f"{visitor}-s{visit}" if uses_session_ids else None
            t_ms = emit_visit(sim, visitor, t_ms, session_id)
            if rng.random() < 0.4:
                t_ms += rng.randint(120_000, 1_500_000)  # back within the session gap
            else:
                t_ms += rng.randint(2_100_000, 14_400_000)  # back after it: a new session


# ---------------------------------------------------------------------------------------
# E-mails


def _emails(sim: Sim, recipients: int) -> None:
    rng = sim.rng
    campaigns = sim.email_campaigns
    span = sim.end_ms - sim.start_ms
    for number, campaign in enumerate(campaigns):
        send_ms = sim.start_ms + span * (2 * number + 1) // (2 * len(campaigns) + 2)
        for index in range(recipients):
            if rng.random() < 0.6:
                emit_mailing(sim, campaign, f"r{index:06d}", send_ms + rng.randrange(600_000))


def emit_mailing(sim: Sim, campaign: str, recipient: str, t_ms: int) -> None:
    """Emit the life of one e-mail: sent, delivered or bounced, opens, clicks..."""
    rng = sim.rng

    def event(ts_ms: int, kind: str, **extra: Any) -> None:
        fields = {"campaign": campaign, "recipient_id": recipient, "type": kind} | extra
        sim.emit(Kind.emails, recipient, ts_ms, fields, sim.jitter())

    event(t_ms, "sent")
    if rng.random() < sim.email_bounce_rate:
        event(
            t_ms + rng.randint(1_000, 60_000), "bounced", bounce_kind=rng.choice(("hard", "soft"))
        )
        return
    t_ms += rng.randint(1_000, 30_000)
    event(t_ms, "delivered")
    if rng.random() < 0.2:  # Apple Mail Privacy Protection fetches the pixel at once
        event(t_ms + rng.randint(1_000, 120_000), "opened", machine_open=True)
    if rng.random() < 0.003:
        event(t_ms + rng.randint(60_000, 7_200_000), "complained")
    if rng.random() < 0.27:
        open_ms = t_ms + int(rng.expovariate(1 / 2_400_000))
        # A third of the readers come back to it: repeated opens, sometimes clicks again.
        for _ in range(1 + (rng.randint(1, 3) if rng.random() < 0.35 else 0)):
            event(open_ms, "opened", machine_open=False)
            if rng.random() < 0.35:
                click_ms = open_ms + rng.randint(5_000, 300_000)
                event(click_ms, "clicked")
                if rng.random() < 0.2:
                    event(click_ms + rng.randint(2_000, 60_000), "clicked")
            open_ms += rng.randint(60_000, 5_400_000)
        if rng.random() < 0.03:
            event(open_ms + rng.randint(5_000, 120_000), "unsubscribed")
    elif rng.random() < 0.03:  # images blocked: a click without an open
        event(t_ms + rng.randint(60_000, 3_600_000), "clicked")


# ---------------------------------------------------------------------------------------
# Orders


def _orders(sim: Sim, customers: int) -> None:
    rng = sim.rng
    for index in range(customers):
        customer = f"cu{index:05d}"
        currency = rng.choices(("EUR", "USD", "GBP"), weights=(60, 25, 15))[0]
        t_ms = sim.uniform_ts(margin_ms=1_800_000)
        for _ in range(rng.choices((1, 2, 3, 4), weights=(60, 25, 10, 5))[0]):
            jitter = sim.burst_jitter()
            labels: dict[str, Any] = {}
            if rng.random() < 0.5:
                labels["campaign"] = rng.choice(sim.web_campaigns)
                labels["channel"] = rng.choice(("paid", "paid", "email", "social", "Organic"))
            base = {"customer_id": customer} | labels
            if rng.random() < 0.3:
                base["visitor_id"] = f"v{rng.randrange(1_000_000):06d}"
            t_ms = emit_shopping(sim, base, currency, t_ms, jitter)
            t_ms += rng.randint(1_800_000, 10_800_000)


def emit_shopping(
    sim: Sim,
    base: dict[str, Any],
    currency: str,
    t_ms: int,
    jitter: Callable[[], int],
    *,
    buy_rate: float = 0.55,
) -> int:
    """Emit one shopping episode (cart, checkout, purchase, refund); return its last time.

    ``base`` holds the fields every order event carries (customer_id, labels...);
    ``buy_rate`` is the chance that a cart is bought.
    """
    rng = sim.rng
    draw = rng.random()
    cart_id: str | None = None
    if draw < 0.85:
        sim.carts += 1
        cart_id = f"cart-{sim.id_prefix}{sim.carts:06d}"
        sim.emit(
            Kind.orders,
            base["customer_id"],
            t_ms,
            base | {"type": "cart_created", "cart_id": cart_id},
            jitter(),
        )
    elif draw < 0.90:
        # A legacy client without cart ids: not a countable cart.
        sim.emit(Kind.orders, base["customer_id"], t_ms, base | {"type": "cart_created"}, jitter())
    buys = draw >= 0.90 or rng.random() < buy_rate
    if cart_id is not None and rng.random() < 0.6:
        checkout_ms = t_ms + rng.randint(30_000, 600_000)
        sim.emit(
            Kind.orders,
            base["customer_id"],
            checkout_ms,
            base | {"type": "checkout_started", "cart_id": cart_id},
            jitter(),
        )
    if buys:
        sim.orders += 1
        order_id = f"o{sim.id_prefix}{sim.orders:06d}"
        # Up to 40 min: a quarter of the buyers come back after abandon_after (30 min).
        t_ms += rng.randint(60_000, 2_400_000)
        amount = _amount(rng, 500, 30_000)
        purchase = base | {
            "type": "purchase",
            "order_id": order_id,
            "amount": amount,
            "currency": currency,
        }
        if cart_id is not None and rng.random() < 0.75:
            purchase["cart_id"] = cart_id
        sim.emit(Kind.orders, base["customer_id"], t_ms, purchase, jitter())
        if rng.random() < 0.06:
            refund = base | {
                "type": "refund",
                "order_id": order_id,
                "amount": amount,
                "currency": currency,
            }
            sim.emit(
                Kind.orders,
                base["customer_id"],
                t_ms + rng.randint(300_000, 7_200_000),
                refund,
                jitter(),
            )
    return t_ms


# ---------------------------------------------------------------------------------------
# Ad spend and surveys


def _adspend(sim: Sim, every_ms: int) -> None:
    plans = [(campaign, "paid") for campaign in sim.web_campaigns]
    plans += [(campaign, "social") for campaign in sim.web_campaigns[::2]]
    plans += [(campaign, "email") for campaign in sim.email_campaigns]
    for tick_ms in range(sim.start_ms, sim.end_ms, every_ms):
        adspend_tick(sim, tick_ms, plans)


def adspend_tick(
    sim: Sim,
    tick_ms: int,
    plans: list[tuple[str, str]],
    cost_cents: tuple[int, int] = (50, 2_500),
    spread_ms: int = 30_000,
    usd_share: float = 0.2,
) -> None:
    """Emit one cost report per (campaign, channel) plan, within ``spread_ms`` of the tick."""
    rng = sim.rng
    for campaign, channel in plans:
        currency = "USD" if rng.random() < usd_share else "EUR"
        fields = {
            "campaign": campaign,
            "channel": channel,
            "cost": _amount(rng, *cost_cents),
            "currency": currency,
        }
        sim.emit(Kind.adspend, campaign, tick_ms + rng.randrange(spread_ms), fields, sim.jitter())


_SCORE_WEIGHTS: Final = (2, 1, 1, 2, 2, 4, 6, 10, 14, 16, 12)


def _surveys(sim: Sim, respondents: int) -> None:
    rng = sim.rng
    campaigns = sim.web_campaigns + sim.email_campaigns
    for index in range(respondents):
        respondent = f"n{index:05d}"
        for _ in range(2 if rng.random() < 0.15 else 1):
            fields = survey_answer(rng, respondent, campaigns)
            sim.emit(Kind.surveys, respondent, sim.uniform_ts(), fields, sim.jitter())


def survey_answer(
    rng: random.Random,
    respondent: str,
    campaigns: list[str],
    score_weights: tuple[int, ...] = _SCORE_WEIGHTS,
) -> dict[str, Any]:
    """Return the fields of one NPS answer, attributed to a campaign four times in ten."""
    fields: dict[str, Any] = {
        "respondent_id": respondent,
        "score": rng.choices(range(11), weights=score_weights)[0],
    }
    if rng.random() < 0.4:
        fields["campaign"] = rng.choice(campaigns)
    return fields


# ---------------------------------------------------------------------------------------
# Bytes: timestamps, serialization, faults

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_OFFSETS_MIN: Final = (60, -300, 330)
_ID_PREFIX: Final[Mapping[Kind, str]] = MappingProxyType(
    {
        Kind.pageviews: "pv",
        Kind.emails: "em",
        Kind.orders: "or",
        Kind.adspend: "ad",
        Kind.surveys: "sv",
    }
)


def _rfc3339(ts_ms: int, offset_min: int = 0) -> str:
    moment = _EPOCH + timedelta(milliseconds=ts_ms)
    if offset_min == 0:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return moment.astimezone(timezone(timedelta(minutes=offset_min))).isoformat(
        timespec="milliseconds"
    )


def ts_value(rng: random.Random, ts_ms: int) -> str | int | float:
    """Return ``ts`` in one of the wire's spellings, all meaning the same instant."""
    draw = rng.random()
    if draw < 0.55:
        return _rfc3339(ts_ms)
    if draw < 0.70:
        return _rfc3339(ts_ms, rng.choice(_OFFSETS_MIN))
    if draw < 0.90:
        return ts_ms  # epoch milliseconds
    return ts_ms / 1000  # epoch seconds with a fraction


def dump_json(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def invalid_value(
    rng: random.Random, kind: Kind, payload: dict[str, Any], ts_ms: int, max_bytes: int
) -> bytes:
    """Return a broken variant of a valid ``payload``: what buggy producers send."""
    entity = ENTITY_FIELD[kind]
    broken = dict(payload)
    faults: list[str] = [
        "truncated",
        "not_json",
        "array",
        "missing_entity",
        "missing_event_id",
        "naive_ts",
        "future_ts",
        "bool_ts",
        "empty_entity",
        "numeric_entity",
        "too_large",
    ]
    faults += {
        Kind.pageviews: [
            "bad_channel",
            "engagement_without_ms",
            "key_event_without_name",
            "unknown_type",
        ],
        Kind.emails: ["unknown_type", "machine_open_text"],
        Kind.orders: [
            "unknown_currency",
            "purchase_without_amount",
            "negative_amount",
            "bad_currency",
        ],
        Kind.adspend: ["unknown_currency", "bad_channel", "negative_amount"],
        Kind.surveys: ["score_11", "score_text", "score_fraction"],
    }[kind]
    fault = rng.choice(faults)
    text = dump_json(payload)
    match fault:
        case "truncated":
            return text[: len(text) // 2]
        case "not_json":
            return b"<html><body>502 Bad Gateway</body></html>"
        case "array":
            return b"[" + text + b"]"
        case "missing_entity":
            del broken[entity]
        case "missing_event_id":
            del broken["event_id"]
        case "naive_ts":
            broken["ts"] = "2025-11-26T12:00:00"  # no offset: whose local time?
        case "future_ts":
            broken["ts"] = _rfc3339(ts_ms + 50 * 365 * 86_400_000)
        case "bool_ts":
            broken["ts"] = True
        case "empty_entity":
            broken[entity] = ""
        case "numeric_entity":
            broken[entity] = 12345
        case "too_large":
            broken["debug"] = "x" * max_bytes
        case "bad_channel":
            broken["channel"] = "tv"
        case "engagement_without_ms":
            broken["type"] = "engagement"
            broken.pop("engaged_ms", None)
        case "key_event_without_name":
            broken["type"] = "key_event"
            broken.pop("name", None)
        case "unknown_type":
            broken["type"] = "forwarded"
        case "machine_open_text":
            broken["type"] = "opened"
            broken["machine_open"] = "yes"
        case "unknown_currency":
            broken["currency"] = "JPY"
            broken.setdefault("amount", "1000")
        case "purchase_without_amount":
            broken["type"] = "purchase"
            broken.pop("amount", None)
        case "negative_amount":
            broken["amount" if kind is Kind.orders else "cost"] = "-5.00"
            broken.setdefault("currency", "EUR")
        case "bad_currency":
            broken["currency"] = "euro"
            broken.setdefault("amount", "10.00")
        case "score_11":
            broken["score"] = 11
        case "score_text":
            broken["score"] = "9"
        case "score_fraction":
            broken["score"] = 9.5
    return dump_json(broken)


def generate(config: GenConfig) -> list[Record]:
    """Return the records of ``config``'s stream in production order; deterministic."""
    seed = config.seed
    simulations: list[tuple[str, Callable[[Sim], None]]] = [
        ("pageviews", lambda sim: _pageviews(sim, config.visitors)),
        ("emails", lambda sim: _emails(sim, config.recipients)),
        ("orders", lambda sim: _orders(sim, config.customers)),
        ("adspend", lambda sim: _adspend(sim, round(config.adspend_every_s * 1000))),
        ("surveys", lambda sim: _surveys(sim, config.respondents)),
    ]
    events: list[_Event] = []
    for name, simulate in simulations:
        # One generator per simulation: changing one entity's draws leaves the others' alone.
        sim = Sim(config, random.Random(f"{seed}:{name}"))
        simulate(sim)
        events += sim.events
    # Production order: event time plus a delivery delay < disorder_s, ties by creation.
    order = sorted(range(len(events)), key=lambda i: (events[i].ts_ms + events[i].jitter_ms, i))

    rng = random.Random(f"{seed}:faults")
    lateness_ms = round(config.allowed_lateness_s * 1000)
    max_ts_ms: dict[tuple[Kind, int], int] = {}
    counters = dict.fromkeys(Kind, 0)
    records: list[Record] = []

    def new_payload(kind: Kind, ts_ms: int, fields: dict[str, Any]) -> dict[str, Any]:
        counters[kind] += 1
        event_id = f"s{seed}-{_ID_PREFIX[kind]}{counters[kind]:07d}"
        return {"event_id": event_id, "ts": ts_value(rng, ts_ms)} | fields

    for index in order:
        event = events[index]
        key = event.key.encode()
        partition = partition_for(key, config.partitions)
        payload = new_payload(event.kind, event.ts_ms, event.fields)
        records.append(Record(event.kind, partition, key, dump_json(payload)))
        # Normal events are never late, so this is the partition's max accepted ts.
        where = (event.kind, partition)
        max_ts_ms[where] = max(max_ts_ms.get(where, event.ts_ms), event.ts_ms)
        if rng.random() < config.invalid_rate:
            broken = new_payload(event.kind, event.ts_ms, event.fields)
            value = invalid_value(rng, event.kind, broken, event.ts_ms, config.max_event_bytes)
            records.append(Record(event.kind, partition, key, value))
        if rng.random() < config.late_rate:
            # A phone's offline batch: dated 1 min to 1 h beyond the allowed lateness.
            late_ms = max_ts_ms[where] - lateness_ms - rng.randint(60_000, 3_600_000)
            late = new_payload(event.kind, late_ms, event.fields)
            records.append(Record(event.kind, partition, key, dump_json(late)))

    # Producer retries: the same key and bytes again, right away or a little later.
    retried: list[Record] = []
    pending: dict[int, list[Record]] = {}
    for position, record in enumerate(records):
        retried += pending.pop(position, [])
        retried.append(record)
        if rng.random() < config.duplicate_rate:
            if rng.random() < 0.5:
                retried.append(record)
            else:
                pending.setdefault(position + rng.randint(50, 500), []).append(record)
    for position in sorted(pending):
        retried += pending[position]
    return retried
