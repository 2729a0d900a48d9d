"""Incidents the live generator can inject, so alerting has something real to catch.

An incident is written ``KIND[:key=value...]`` on the command line, e.g.
``deliverability-drop:campaign=spring_sale:at=+5m:for=10m``. It is active for events whose
event time lies in ``[origin + at, origin + at + for)``, where ``origin`` is the
generator's start; ``alter`` says what an active incident does to one event. Pure: no
clock, no randomness (which events are hit is a stable hash of the entity), so a stream
with and without an incident differs only where the incident says.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from streamkpi.events import Kind

__all__ = [
    "DEFAULT_FACTOR",
    "DEFAULT_SEVERITY",
    "VISIT_CONTEXT_KINDS",
    "Incident",
    "IncidentError",
    "IncidentKind",
    "alter",
    "parse_duration_s",
    "parse_incident",
]


class IncidentError(ValueError):
    """An incident spec that cannot be parsed; the message says what is wrong."""


class IncidentKind(StrEnum):
    """What goes wrong."""

    # Delivered e-mails of the campaign bounce instead (a blocklisted sending IP):
    # deliverability = delivered / sent collapses; their opens and clicks vanish.
    deliverability_drop = "deliverability-drop"
    # Key events and purchases of the campaign's visits are lost (a broken checkout):
    # conversion rate, purchases and revenue fall, carts are abandoned.
    conversion_drop = "conversion-drop"
    # Every event of the campaign (of the whole stream without one) stops (a dead tag
    # manager, a stopped producer): traffic falls to zero, "no events" alerts fire.
    traffic_stop = "traffic-stop"
    # Purchases of the campaign's visits stop (the payment step fails): their purchase key
    # events and orders (and refunds) are lost, carts are abandoned, revenue falls.
    checkout_broken = "checkout-broken"
    # Visits landing on the page (or from the campaign) see a broken page and leave: the
    # landing hit arrives, nothing after it (no engagement, pages, key events or orders).
    landing_broken = "landing-broken"
    # The campaign's ad spend is multiplied by ``factor`` (a bid set in cents read as
    # euros): CPA rises and ROAS falls by that factor.
    ad_overspend = "ad-overspend"
    # Survey answers (of the campaign) fall to detractor scores (0-6): NPS falls.
    nps_drop = "nps-drop"


# The share of affected events when the spec gives no severity=.
DEFAULT_SEVERITY: Final[Mapping[IncidentKind, float]] = {
    IncidentKind.deliverability_drop: 0.5,
    IncidentKind.conversion_drop: 0.8,
    IncidentKind.traffic_stop: 1.0,
    IncidentKind.checkout_broken: 1.0,
    IncidentKind.landing_broken: 1.0,
    IncidentKind.ad_overspend: 1.0,
    IncidentKind.nps_drop: 0.5,
}
# The spend multiplier of ad-overspend when the spec gives no factor=.
DEFAULT_FACTOR: Final = 5.0
# The kinds that need the live generator's visit context (which visit an event belongs
# to, its landing page and campaign); the batch stream refuses them.
VISIT_CONTEXT_KINDS: Final = frozenset(
    {IncidentKind.conversion_drop, IncidentKind.checkout_broken, IncidentKind.landing_broken}
)
_KEYS: Final = ("campaign", "page", "at", "for", "severity", "factor")
_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_S: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}


@dataclass(frozen=True)
class Incident:
    """One incident: ``kind`` hits ``campaign`` (every campaign if None) from ``at_s``.

    ``at_s`` and ``for_s`` are seconds after the generator's start; ``for_s`` None lasts
    until the generator stops. ``severity`` is the share of the events it hits (0, 1].
    ``page`` (landing-broken only) limits it to visits landing on that page; ``factor``
    (ad-overspend only) multiplies the spend.
    """

    kind: IncidentKind
    campaign: str | None = None
    at_s: float = 0.0
    for_s: float | None = None
    severity: float = 1.0
    page: str | None = None
    factor: float = DEFAULT_FACTOR

    def __post_init__(self) -> None:
        """Refuse values that make no sense."""
        if self.at_s < 0:
            raise IncidentError(f"at must not be negative, got {self.at_s:g}s")
        if self.for_s is not None and self.for_s <= 0:
            raise IncidentError(f"for must be positive, got {self.for_s:g}s")
        if not 0 < self.severity <= 1:
            raise IncidentError(f"severity must be in (0, 1], got {self.severity:g}")
        if self.campaign is not None and not self.campaign:
            raise IncidentError("campaign must not be empty")
        if self.page is not None and self.kind is not IncidentKind.landing_broken:
            raise IncidentError(f"page= is for landing-broken, not {self.kind}")
        if self.page is not None and not self.page.startswith("/"):
            raise IncidentError(f"page must be a path starting with '/', got {self.page!r}")
        if self.factor != DEFAULT_FACTOR and self.kind is not IncidentKind.ad_overspend:
            raise IncidentError(f"factor= is for ad-overspend, not {self.kind}")
        if not 1 < self.factor <= 1000:
            raise IncidentError(f"factor must be in (1, 1000], got {self.factor:g}")

    def active(self, elapsed_s: float) -> bool:
        """Return whether the incident holds ``elapsed_s`` after the generator's start."""
        return self.at_s <= elapsed_s and (self.for_s is None or elapsed_s < self.at_s + self.for_s)

    def hits(self, campaign: str | None, entity: str) -> bool:
        """Return whether an event of ``campaign`` about ``entity`` is affected."""
        if self.campaign is not None and campaign != self.campaign:
            return False
        if self.severity >= 1:
            return True
        # Stable per (incident, entity): all events of one recipient or visit agree.
        draw = zlib.crc32(f"{self.kind}|{self.campaign}|{entity}".encode()) / 2**32
        return draw < self.severity

    def describe(self) -> str:
        """Return the incident in the command line's syntax, every key spelled out."""
        parts = [self.kind.value]
        if self.campaign is not None:
            parts.append(f"campaign={self.campaign}")
        if self.page is not None:
            parts.append(f"page={self.page}")
        parts.append(f"at=+{_format_s(self.at_s)}")
        if self.for_s is not None:
            parts.append(f"for={_format_s(self.for_s)}")
        parts.append(f"severity={self.severity:g}")
        if self.kind is IncidentKind.ad_overspend:
            parts.append(f"factor={self.factor:g}")
        return ":".join(parts)


def _format_s(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def parse_duration_s(text: str) -> float:
    """Return the seconds of ``90s``, ``5m``, ``1h30m``, ``2d`` or a bare number of seconds."""
    spec = text.strip()
    if not spec:
        raise IncidentError("empty duration")
    try:
        return float(spec)
    except ValueError:
        pass
    position = 0
    total = 0.0
    for match in _DURATION.finditer(spec):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        position = match.end()
    if position != len(spec) or position == 0:
        raise IncidentError(
            f"bad duration {text!r}: use a number with a unit, e.g. 90s, 5m, 1h30m, 2d"
        )
    return total


def parse_incident(spec: str) -> Incident:
    """Return the incident of ``KIND[:campaign=NAME][:at=+DURATION][:for=DURATION]...``."""
    head, *options = spec.strip().split(":")
    try:
        kind = IncidentKind(head.strip())
    except ValueError:
        known = ", ".join(k.value for k in IncidentKind)
        raise IncidentError(f"unknown incident kind {head!r} (one of: {known})") from None
    values: dict[str, str] = {}
    for option in options:
        if not option.strip():
            raise IncidentError(f"empty option in {spec!r} (two ':' in a row?)")
        key, sep, value = option.partition("=")
        key = key.strip()
        if not sep:
            raise IncidentError(f"{option!r} is not key=value (keys: {', '.join(_KEYS)})")
        if key not in _KEYS:
            raise IncidentError(f"unknown key {key!r} (keys: {', '.join(_KEYS)})")
        if key in values:
            raise IncidentError(f"{key} given twice")
        values[key] = value.strip()
    at = values.get("at", "0")
    at_s = _duration_with_unit("at", at[1:] if at.startswith("+") else at)
    for_s = _duration_with_unit("for", values["for"]) if "for" in values else None
    severity = DEFAULT_SEVERITY[kind]
    if "severity" in values:
        try:
            severity = float(values["severity"].rstrip("%")) / (
                100 if values["severity"].endswith("%") else 1
            )
        except ValueError:
            raise IncidentError(f"bad severity {values['severity']!r}: use 0.5 or 50%") from None
    factor = DEFAULT_FACTOR
    if "factor" in values:
        try:
            factor = float(values["factor"].rstrip("x"))
        except ValueError:
            raise IncidentError(f"bad factor {values['factor']!r}: use 5 or 5x") from None
    campaign = values.get("campaign")
    return Incident(kind, campaign, at_s, for_s, severity, values.get("page"), factor)


def _duration_with_unit(key: str, text: str) -> float:
    """Return the seconds of an incident's duration; a bare number (but 0) is refused.

    ``for=10`` could mean seconds or minutes: the spec must say.
    """
    try:
        bare = float(text)
    except ValueError:
        return parse_duration_s(text)
    if bare != 0:
        raise IncidentError(f"{key}={text} has no unit: write {text}s, {text}m or {text}h")
    return 0.0


_EMAIL_AFTER_DELIVERY: Final = frozenset({"opened", "clicked", "unsubscribed", "complained"})


def alter(
    incidents: Iterable[Incident],
    kind: Kind,
    fields: dict[str, Any],
    *,
    elapsed_s: float,
    campaign: str | None,
    entity: str,
    landing_page: str | None = None,
    landing_hit: bool = False,
    landing_elapsed_s: float | None = None,
) -> dict[str, Any] | None:
    """Return the event as the active incidents make it: ``fields``, altered, or None (lost).

    ``elapsed_s`` is the event's time after the generator's start; ``campaign`` the
    campaign it belongs to (a visit's key events carry none themselves: pass the
    landing hit's); ``entity`` its visitor, recipient, customer... for the stable draw.
    ``landing_page`` is the page its visit landed on ("" for none, None outside a visit)
    and ``landing_hit`` whether it is that landing hit itself (landing-broken keeps it);
    ``landing_elapsed_s`` the landing hit's time: a landing-broken incident breaks the
    visits that land while it is active, all of each such visit.
    """
    for incident in incidents:
        at_s = elapsed_s
        if incident.kind is IncidentKind.landing_broken and landing_elapsed_s is not None:
            at_s = landing_elapsed_s
        if not incident.active(at_s) or not incident.hits(campaign, entity):
            continue
        event_type = fields.get("type")
        match incident.kind:
            case IncidentKind.traffic_stop:
                return None
            case IncidentKind.deliverability_drop if kind is Kind.emails:
                if event_type == "delivered":
                    fields = fields | {"type": "bounced", "bounce_kind": "hard"}
                elif event_type in _EMAIL_AFTER_DELIVERY:
                    return None  # nothing arrives, so nothing is read
            case IncidentKind.conversion_drop:
                if kind is Kind.pageviews and event_type == "key_event":
                    return None
                if kind is Kind.orders and event_type in ("purchase", "refund"):
                    return None
            case IncidentKind.checkout_broken:
                if kind is Kind.pageviews and fields.get("name") == "purchase":
                    return None
                if kind is Kind.orders and event_type in ("purchase", "refund"):
                    return None
            case IncidentKind.landing_broken if landing_page is not None and not landing_hit:
                on_page = incident.page is None or incident.page == landing_page
                if on_page and kind in (Kind.pageviews, Kind.orders):
                    return None
            case IncidentKind.ad_overspend if kind is Kind.adspend:
                cost = Decimal(str(fields["cost"])) * Decimal(str(incident.factor))
                fields = fields | {"cost": str(cost.quantize(_CENT))}
            case IncidentKind.nps_drop if kind is Kind.surveys:
                if fields["score"] > _DETRACTOR_MAX:
                    # Stable per respondent: a score among the detractors' 0-6.
                    low = zlib.crc32(f"nps|{entity}".encode()) % (_DETRACTOR_MAX + 1)
                    fields = fields | {"score": low}
    return fields


_CENT: Final = Decimal("0.01")
_DETRACTOR_MAX: Final = 6
