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
from enum import StrEnum
from typing import Any, Final

from streamkpi.events import Kind

__all__ = [
    "DEFAULT_SEVERITY",
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


# The share of affected events when the spec gives no severity=.
DEFAULT_SEVERITY: Final[Mapping[IncidentKind, float]] = {
    IncidentKind.deliverability_drop: 0.5,
    IncidentKind.conversion_drop: 0.8,
    IncidentKind.traffic_stop: 1.0,
}
_KEYS: Final = ("campaign", "at", "for", "severity")
_DURATION: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_S: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}


@dataclass(frozen=True)
class Incident:
    """One incident: ``kind`` hits ``campaign`` (every campaign if None) from ``at_s``.

    ``at_s`` and ``for_s`` are seconds after the generator's start; ``for_s`` None lasts
    until the generator stops. ``severity`` is the share of the events it hits (0, 1].
    """

    kind: IncidentKind
    campaign: str | None = None
    at_s: float = 0.0
    for_s: float | None = None
    severity: float = 1.0

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
        parts.append(f"at=+{_format_s(self.at_s)}")
        if self.for_s is not None:
            parts.append(f"for={_format_s(self.for_s)}")
        parts.append(f"severity={self.severity:g}")
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
    at_s = parse_duration_s(at[1:] if at.startswith("+") else at)
    for_s = parse_duration_s(values["for"]) if "for" in values else None
    severity = DEFAULT_SEVERITY[kind]
    if "severity" in values:
        try:
            severity = float(values["severity"].rstrip("%")) / (
                100 if values["severity"].endswith("%") else 1
            )
        except ValueError:
            raise IncidentError(f"bad severity {values['severity']!r}: use 0.5 or 50%") from None
    campaign = values.get("campaign")
    return Incident(kind, campaign, at_s, for_s, severity)


_EMAIL_AFTER_DELIVERY: Final = frozenset({"opened", "clicked", "unsubscribed", "complained"})


def alter(
    incidents: Iterable[Incident],
    kind: Kind,
    fields: dict[str, Any],
    *,
    elapsed_s: float,
    campaign: str | None,
    entity: str,
) -> dict[str, Any] | None:
    """Return the event as the active incidents make it: ``fields``, altered, or None (lost).

    ``elapsed_s`` is the event's time after the generator's start; ``campaign`` the
    campaign it belongs to (a visit's key events carry none themselves: pass the
    landing hit's); ``entity`` its visitor, recipient, customer... for the stable draw.
    """
    for incident in incidents:
        if not incident.active(elapsed_s) or not incident.hits(campaign, entity):
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
    return fields
