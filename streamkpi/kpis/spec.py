"""KPIs as data: the components workers count and the ratios built from them.

This table is read by the engine (what to count), the exporter (one gauge family per
component), the rule generator (one recording rule per KPI and window) and the dashboards.
Adding a KPI touches ``KPIS``; a new component also needs one place in the engine that
counts it. README.md, "KPI definitions", says exactly when each component is counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from streamkpi.kpis.config import EngineConfig

__all__ = [
    "COMPONENTS",
    "KPIS",
    "Category",
    "Component",
    "Direction",
    "Kpi",
    "Labels",
    "Unit",
    "component",
    "detection_delay_s",
    "kpi",
    "title",
]


class Category(StrEnum):
    """The six KPI families of the design."""

    acquisition = "acquisition"
    engagement = "engagement"
    retention = "retention"
    emailing = "e-mailing"
    ecommerce = "e-commerce"
    paid = "paid"


class Unit(StrEnum):
    """How a value is shown (Grafana units follow from it)."""

    number = "number"  # a plain count of things
    currency = "currency"  # the reporting currency
    ratio = "ratio"  # 0..1, shown as percent
    percent = "percent"  # a ratio that may leave 0..1 (ROI), shown as percent
    multiple = "multiple"  # a factor (ROAS), shown as "2.1x"
    score = "score"  # NPS, -100..+100


class Direction(StrEnum):
    """Which way is good: drives colours and which threshold alerts make sense."""

    up = "up"
    down = "down"
    neutral = "neutral"


class Labels(StrEnum):
    """The label set a component is broken down by (besides ``window``)."""

    campaign_channel = "campaign_channel"
    page = "page"  # landing-page breakdown of bounce rate


@dataclass(frozen=True, slots=True)
class Component:
    """A count (or sum) kept in event-time buckets and exported as ``streamkpi_<name>``."""

    name: str
    unit: Unit
    help: str
    labels: Labels = Labels.campaign_channel
    # A stock (a level at one instant) is not a sum of buckets; the engine derives it per window.
    stock: bool = False

    @property
    def metric(self) -> str:
        """Return the Prometheus metric name."""
        return f"streamkpi_{self.name}"


@dataclass(frozen=True, slots=True)
class Kpi:
    """A KPI: ``scale * (sum(numerator) - sum(subtract)) / sum(denominator)``, or a plain sum."""

    name: str
    category: Category
    unit: Unit
    direction: Direction
    help: str
    numerator: tuple[str, ...]
    denominator: tuple[str, ...] = ()
    subtract: tuple[str, ...] = ()  # ROI's "- spend", NPS's "- detractors"
    scale: float = 1.0
    labels: Labels = Labels.campaign_channel
    # When a member of the population is counted (README's KPI table, "attribution").
    attribution: str = "each event at its ts"
    # EngineConfig fields whose sum is the detection delay: how long after a change in
    # behaviour the short window fully reflects it (see detection_delay_s).
    delay: tuple[str, ...] = ()
    # True when a window's value still rises after the window (a delivery cohort).
    provisional: bool = False
    # The component whose short-window sum is the population an alert's min_volume
    # guards; default: the first denominator component.
    volume_component: str | None = None

    @property
    def is_ratio(self) -> bool:
        """Say whether the KPI divides by a denominator."""
        return bool(self.denominator)

    @property
    def volume(self) -> str:
        """Return the component that measures the KPI's population (or its value)."""
        if self.volume_component is not None:
            return self.volume_component
        return self.denominator[0] if self.denominator else self.numerator[0]

    @property
    def components(self) -> tuple[str, ...]:
        """Return every component the KPI reads, without repeats."""
        return tuple(dict.fromkeys(self.numerator + self.subtract + self.denominator))


COMPONENTS: tuple[Component, ...] = (
    # acquisition
    Component("pageviews", Unit.number, "Pageviews (type page_view), by the session's labels."),
    Component("sessions", Unit.number, "Sessions started (30 min inactivity gap by default)."),
    Component("new_visitors", Unit.number, "Sessions of visitors not seen before."),
    Component("leads", Unit.number, "Lead key events (name in lead_events, default signup)."),
    # engagement
    Component(
        "engaged_sessions",
        Unit.number,
        "Sessions becoming engaged (2 pageviews, 10 s engaged or a key event), at that event.",
    ),
    Component(
        "bounced_sessions",
        Unit.number,
        "Sessions that ended without engaging, at their end (last event + session gap).",
    ),
    Component(
        "converted_sessions",
        Unit.number,
        "Sessions with a purchase key event (purchase_event), at the first one.",
    ),
    Component(
        "unconverted_sessions",
        Unit.number,
        "Sessions that ended without a purchase key event, at their end.",
    ),
    Component("key_event_sessions", Unit.number, "Sessions with a key event, at the first one."),
    Component(
        "sessions_without_key_event",
        Unit.number,
        "Sessions that ended without a key event, at their end.",
    ),
    Component("landing_sessions", Unit.number, "Sessions started, by landing page.", Labels.page),
    Component(
        "landing_engaged_sessions",
        Unit.number,
        "Engaged sessions by landing page, at engagement.",
        Labels.page,
    ),
    Component(
        "landing_bounced_sessions",
        Unit.number,
        "Bounced sessions by landing page, at session end.",
        Labels.page,
    ),
    # retention
    Component("purchases", Unit.number, "Purchase events."),
    Component("returning_purchases", Unit.number, "Purchases by customers who bought before."),
    Component(
        "customer_activations", Unit.number, "Customers becoming active (first purchase, or again)."
    ),
    Component("churned_customers", Unit.number, "Customers with no purchase for churn_after."),
    Component(
        "active_customers",
        Unit.number,
        "Customers active at the window's start (a purchase within churn_after).",
        stock=True,
    ),
    Component("nps_responses", Unit.number, "Survey answers."),
    Component("nps_promoters", Unit.number, "Survey answers scoring 9 or 10."),
    Component("nps_detractors", Unit.number, "Survey answers scoring 0 to 6."),
    # e-mailing
    Component("emails_sent", Unit.number, "E-mails sent."),
    Component("emails_delivered", Unit.number, "E-mails delivered."),
    Component("emails_bounced", Unit.number, "E-mails bounced (hard or soft)."),
    Component(
        "email_unique_opens",
        Unit.number,
        "First human open (or click) per recipient and campaign, provisional: in the bucket"
        " of the first delivery.",
    ),
    Component(
        "email_machine_opens",
        Unit.number,
        "First privacy-proxy (machine) open per recipient and campaign, provisional: in the"
        " bucket of the first delivery.",
    ),
    Component(
        "email_unique_clicks",
        Unit.number,
        "First click per recipient and campaign, provisional: in the bucket of the first delivery.",
    ),
    Component("email_unsubscribes", Unit.number, "Unsubscribe events."),
    Component("email_complaints", Unit.number, "Spam complaints."),
    # e-commerce
    Component("revenue", Unit.currency, "Purchase amounts in the reporting currency."),
    Component("refunds", Unit.number, "Refund events."),
    Component("refunded_revenue", Unit.currency, "Refunded amounts in the reporting currency."),
    Component("carts_created", Unit.number, "Carts created (unique cart_id)."),
    Component(
        "carts_abandoned",
        Unit.number,
        "Carts with no purchase within abandon_after, at that deadline (+ allowed lateness).",
    ),
    Component("carts_purchased", Unit.number, "Open carts bought, at the purchase."),
    # paid
    Component("ad_spend", Unit.currency, "Ad spend in the reporting currency."),
    Component("conversions", Unit.number, "Purchases plus lead key events."),
)

# A session's outcome is decided when the watermark reaches its end (README).
_SESSION_END: Final = ("session_gap_s", "allowed_lateness_s")
_COHORT: Final = "in the bucket of the e-mail's first delivery (provisional)"

KPIS: tuple[Kpi, ...] = (
    Kpi(
        "traffic",
        Category.acquisition,
        Unit.number,
        Direction.up,
        "Pageviews.",
        ("pageviews",),
    ),
    Kpi("sessions", Category.acquisition, Unit.number, Direction.up, "Sessions.", ("sessions",)),
    Kpi(
        "new_visitors",
        Category.acquisition,
        Unit.number,
        Direction.up,
        "First-seen visitors.",
        ("new_visitors",),
    ),
    Kpi("leads", Category.acquisition, Unit.number, Direction.up, "Leads (signups).", ("leads",)),
    Kpi(
        "conversion_rate",
        Category.engagement,
        Unit.ratio,
        Direction.up,
        "Purchase conversion: sessions with a purchase key event / sessions decided.",
        ("converted_sessions",),
        ("converted_sessions", "unconverted_sessions"),
        attribution="converted at the purchase key event, unconverted at session end",
        delay=_SESSION_END,
        volume_component="sessions",
    ),
    Kpi(
        "key_event_rate",
        Category.engagement,
        Unit.ratio,
        Direction.up,
        "Sessions with any key event (signup, add to cart...) / sessions decided.",
        ("key_event_sessions",),
        ("key_event_sessions", "sessions_without_key_event"),
        attribution="at the first key event, or at session end without one",
        delay=_SESSION_END,
        volume_component="sessions",
    ),
    Kpi(
        "bounce_rate",
        Category.engagement,
        Unit.ratio,
        Direction.down,
        "Sessions ended without engaging / sessions decided.",
        ("bounced_sessions",),
        ("bounced_sessions", "engaged_sessions"),
        attribution="engaged when it engages, bounced at session end",
        delay=_SESSION_END,
        volume_component="sessions",
    ),
    Kpi(
        "landing_bounce_rate",
        Category.engagement,
        Unit.ratio,
        Direction.down,
        "Bounce rate by landing page.",
        ("landing_bounced_sessions",),
        ("landing_bounced_sessions", "landing_engaged_sessions"),
        labels=Labels.page,
        attribution="engaged when it engages, bounced at session end",
        delay=_SESSION_END,
        volume_component="landing_sessions",
    ),
    Kpi(
        "repeat_customer_rate",
        Category.retention,
        Unit.ratio,
        Direction.up,
        "Purchases by returning customers / purchases.",
        ("returning_purchases",),
        ("purchases",),
    ),
    Kpi(
        "churn_rate",
        Category.retention,
        Unit.ratio,
        Direction.down,
        "Customers lost in the window / customers active at its start.",
        ("churned_customers",),
        ("active_customers",),
        attribution="churned when churn_after passes without a purchase",
        delay=("churn_after_s",),
    ),
    Kpi(
        "nps",
        Category.retention,
        Unit.score,
        Direction.up,
        "Net promoter score: % promoters - % detractors.",
        ("nps_promoters",),
        ("nps_responses",),
        subtract=("nps_detractors",),
        scale=100.0,
    ),
    Kpi(
        "open_rate",
        Category.emailing,
        Unit.ratio,
        Direction.up,
        "Unique human opens / delivered.",
        ("email_unique_opens",),
        ("emails_delivered",),
        attribution=_COHORT,
        provisional=True,
    ),
    Kpi(
        "machine_open_rate",
        Category.emailing,
        Unit.ratio,
        Direction.neutral,
        "Unique machine (privacy-proxy) opens / delivered, reported apart from open rate.",
        ("email_machine_opens",),
        ("emails_delivered",),
        attribution=_COHORT,
        provisional=True,
    ),
    Kpi(
        "click_rate",
        Category.emailing,
        Unit.ratio,
        Direction.up,
        "Unique clicks / delivered.",
        ("email_unique_clicks",),
        ("emails_delivered",),
        attribution=_COHORT,
        provisional=True,
    ),
    Kpi(
        "click_to_open_rate",
        Category.emailing,
        Unit.ratio,
        Direction.up,
        "Unique clicks / unique human opens.",
        ("email_unique_clicks",),
        ("email_unique_opens",),
        attribution=_COHORT,
        provisional=True,
    ),
    Kpi(
        "deliverability",
        Category.emailing,
        Unit.ratio,
        Direction.up,
        "Delivered / (delivered + bounced).",
        ("emails_delivered",),
        ("emails_delivered", "emails_bounced"),
        attribution="at the delivered or bounced event",
        volume_component="emails_sent",
    ),
    Kpi(
        "average_order_value",
        Category.ecommerce,
        Unit.currency,
        Direction.up,
        "Revenue / purchases.",
        ("revenue",),
        ("purchases",),
    ),
    Kpi(
        "cart_abandonment_rate",
        Category.ecommerce,
        Unit.ratio,
        Direction.down,
        "Carts abandoned / carts decided (abandoned or bought).",
        ("carts_abandoned",),
        ("carts_abandoned", "carts_purchased"),
        attribution="bought at the purchase, abandoned when abandon_after passes",
        delay=("abandon_after_s", "allowed_lateness_s"),
        volume_component="carts_created",
    ),
    Kpi(
        "cpa",
        Category.paid,
        Unit.currency,
        Direction.down,
        "Cost per acquisition: ad spend / conversions.",
        ("ad_spend",),
        ("conversions",),
    ),
    Kpi(
        "roas",
        Category.paid,
        Unit.multiple,
        Direction.up,
        "Return on ad spend: revenue / ad spend.",
        ("revenue",),
        ("ad_spend",),
    ),
    Kpi(
        "roi",
        Category.paid,
        Unit.percent,
        Direction.up,
        "Return on investment: (revenue - ad spend) / ad spend.",
        ("revenue",),
        ("ad_spend",),
        subtract=("ad_spend",),
    ),
)

_COMPONENTS_BY_NAME = {c.name: c for c in COMPONENTS}
_KPIS_BY_NAME = {k.name: k for k in KPIS}


def component(name: str) -> Component:
    """Return the component called ``name``."""
    return _COMPONENTS_BY_NAME[name]


def kpi(name: str) -> Kpi:
    """Return the KPI called ``name``."""
    return _KPIS_BY_NAME[name]


def detection_delay_s(kpi: Kpi, config: EngineConfig) -> int:
    """Return how long after a change in behaviour ``kpi``'s short window fully shows it."""
    return sum(int(getattr(config, name)) for name in kpi.delay)


def title(name: str) -> str:
    """Return a KPI or component name as a title (short names are acronyms: CPA, ROI)."""
    if len(name) <= 4 and "_" not in name:
        return name.upper()
    return name.replace("_", " ").capitalize()
