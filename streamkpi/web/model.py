"""What the live page shows, computed from KPI reports: pure, no I/O (#16).

A page is one selection (window, campaign, channel). Its tiles are the KPIs of the
selection's sum, each with the change against the window before and a status from the
alert config's thresholds; its table is the selection's campaign x channel cells.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from streamkpi.alerts.config import AlertConfig
from streamkpi.config import parse_duration_s
from streamkpi.kpis.spec import KPIS, Category, Direction, Kpi, Labels, Unit

__all__ = [
    "TABLE_KPIS",
    "TILE_KPIS",
    "Alert",
    "Health",
    "Page",
    "PageError",
    "Selection",
    "Status",
    "Threshold",
    "Tile",
    "build_page",
    "format_value",
    "parse_selection",
    "thresholds_of",
]

# Every campaign x channel KPI, in spec order (grouped by category on the page).
TILE_KPIS: tuple[Kpi, ...] = tuple(k for k in KPIS if k.labels is Labels.campaign_channel)
_BY_NAME = {k.name: k for k in TILE_KPIS}
# The columns of the campaign x channel table: what a campaign manager scans first.
TABLE_KPIS: tuple[str, ...] = (
    "sessions",
    "conversion_rate",
    "bounce_rate",
    "deliverability",
    "cart_abandonment_rate",
    "cpa",
    "roas",
)
_PARAMETERS = frozenset({"window", "campaign", "channel"})


class PageError(ValueError):
    """A bad query string: shown with HTTP 400."""


class Status(StrEnum):
    """A tile's state, from most to least urgent (also its CSS class)."""

    firing = "firing"  # Alertmanager reports an alert on this KPI for the selection
    breach = "breach"  # past the alert threshold, with at least the alert's volume
    low_volume = "low-volume"  # past the threshold, but too few to alert on
    ok = "ok"  # within the thresholds
    plain = "plain"  # no threshold, or no value


@dataclass(frozen=True, slots=True)
class Selection:
    """What the visitor chose: kept in the URL's query string."""

    window: str
    campaign: str | None = None
    channel: str | None = None

    def query(self, **changes: str | None) -> dict[str, str]:
        """Return the query parameters of this selection with ``changes`` applied."""
        values = {"window": self.window, "campaign": self.campaign, "channel": self.channel}
        values.update(changes)
        return {k: v for k, v in values.items() if v}


def parse_selection(pairs: Iterable[tuple[str, str]], windows: Sequence[str]) -> Selection:
    """Return the Selection of a query string's (name, value) pairs; PageError if bad.

    An empty value means "all" (a form's "All campaigns" option sends ``campaign=``).
    """
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in _PARAMETERS:
            raise PageError(f"unknown parameter {name!r}; use window, campaign or channel")
        if name in values:
            raise PageError(f"parameter {name!r} is given more than once; give it once")
        values[name] = value
    window = values.get("window") or windows[0]
    if window not in windows:
        raise PageError(f"window {window!r} is not one of {', '.join(windows)}")
    return Selection(window, values.get("campaign") or None, values.get("channel") or None)


@dataclass(frozen=True, slots=True)
class Threshold:
    """One KPI's alert bounds, as the alert rules apply them."""

    lower: float | None
    upper: float | None
    severity: str
    min_volume: float  # of ``volume`` in the alert's short window
    volume: str  # the component guarded
    short_s: int  # the alert's short window

    def breached(self, value: float) -> bool:
        """Say whether ``value`` is past a bound."""
        return (self.lower is not None and value < self.lower) or (
            self.upper is not None and value > self.upper
        )

    def enough(self, volume: float, window_s: int) -> bool:
        """Say whether ``volume`` over ``window_s`` is at least the alert's, pro rata."""
        return volume >= self.min_volume * window_s / self.short_s


def thresholds_of(config: AlertConfig, campaign: str | None) -> dict[str, Threshold]:
    """Return the threshold of each KPI that has one, with ``campaign``'s overrides."""
    out: dict[str, Threshold] = {}
    overrides = config.campaigns.get(campaign, {}) if campaign else {}
    for name, entry in config.kpis.items():
        kpi = _BY_NAME.get(name)
        if kpi is None:
            continue
        lower, upper, severity = entry.lower, entry.upper, entry.severity
        min_volume = entry.min_volume
        override = overrides.get(name)
        if override is not None:
            if not override.enabled:
                continue
            lower = override.lower if override.lower is not None else lower
            upper = override.upper if override.upper is not None else upper
            severity = override.severity or severity
            min_volume = override.min_volume or min_volume
        if lower is None and upper is None:
            continue
        windows = entry.windows or config.windows
        out[name] = Threshold(
            lower,
            upper,
            severity,
            min_volume,
            entry.volume or kpi.volume,
            parse_duration_s(windows.short),
        )
    return out


@dataclass(frozen=True, slots=True)
class Alert:
    """A firing alert as Alertmanager reports it (no ids: labels are rule labels)."""

    name: str
    severity: str
    summary: str
    description: str
    labels: Mapping[str, str]
    starts_at: str

    @property
    def kpi(self) -> str | None:
        """Return the KPI the alert is about, if any."""
        return self.labels.get("kpi")

    def concerns(self, selection: Selection) -> bool:
        """Say whether the alert is about the selection (or a part of it)."""
        for label in ("campaign", "channel"):
            chosen = getattr(selection, label)
            if chosen is not None and self.labels.get(label, chosen) != chosen:
                return False
        return True

    @classmethod
    def from_alertmanager(cls, item: Mapping[str, Any]) -> Alert:
        """Build from one entry of Alertmanager's ``GET /api/v2/alerts``."""
        labels = {str(k): str(v) for k, v in (item.get("labels") or {}).items()}
        annotations = item.get("annotations") or {}
        return cls(
            name=labels.get("alertname", "?"),
            severity=labels.get("severity", ""),
            summary=str(annotations.get("summary", "")),
            description=str(annotations.get("description", "")),
            labels=labels,
            starts_at=_clock(str(item.get("startsAt", ""))),
        )


def _clock(iso: str) -> str:
    """Return Alertmanager's RFC 3339 ``startsAt`` as "HH:MM:SS UTC" (as given if odd)."""
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    if moment.tzinfo is None:
        return iso
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True, slots=True)
class Health:
    """Pipeline health, whatever the source (None: not known)."""

    events_per_s: float | None = None
    consumer_lag: float | None = None
    watermark_delay_s: float | None = None
    dead_letters: float | None = None  # in the last hour
    workers: int | None = None


@dataclass(frozen=True, slots=True)
class Tile:
    """One KPI of the selection."""

    kpi: Kpi
    value: float | None
    text: str
    previous: float | None
    change: str  # "" when there is nothing to compare
    change_good: bool | None  # None: neutral or no change
    status: Status
    detail: str  # why the status (threshold, volume, alert)
    trend: tuple[tuple[float, float | None], ...]


@dataclass(frozen=True, slots=True)
class Cell:
    """One value of the campaign x channel table."""

    text: str
    status: Status


@dataclass(frozen=True, slots=True)
class Row:
    """One campaign x channel of the table."""

    campaign: str
    channel: str
    cells: tuple[Cell, ...]


@dataclass(frozen=True, slots=True)
class Page:
    """Everything the template renders."""

    selection: Selection
    windows: tuple[str, ...]
    campaigns: tuple[str, ...]
    channels: tuple[str, ...]
    groups: tuple[tuple[Category, tuple[Tile, ...]], ...]
    rows: tuple[Row, ...]
    alerts: tuple[Alert, ...]
    alerts_note: str
    health: Health
    scope: str
    generated_s: float
    trend_note: str = ""
    notes: tuple[str, ...] = field(default=())


def format_value(kpi: Kpi, value: float | None, currency: str) -> str:
    """Return ``value`` as the page shows it ("97.3%", "EUR 12.40", "2.10x", "—")."""
    if value is None or math.isnan(value):
        return "—"
    if kpi.unit is Unit.ratio or kpi.unit is Unit.percent:
        return f"{value * 100:.1f}%"
    if kpi.unit is Unit.currency:
        return f"{currency} {value:,.2f}"
    if kpi.unit is Unit.multiple:
        return f"{value:.2f}x"
    if kpi.unit is Unit.score:
        return f"{value:+.0f}"
    return f"{value:,.0f}"


def _change(kpi: Kpi, value: float | None, previous: float | None) -> tuple[str, bool | None]:
    if value is None or previous is None:
        return "", None
    if kpi.unit in (Unit.ratio, Unit.percent):
        delta = (value - previous) * 100
        text = f"{delta:+.1f} pp"
    elif kpi.unit is Unit.score:
        delta = value - previous
        text = f"{delta:+.0f}"
    elif previous == 0:
        return ("new" if value else ""), None
    else:
        delta = (value - previous) / abs(previous) * 100
        text = f"{delta:+.0f}%"
    if round(delta, 1) == 0 or kpi.direction is Direction.neutral:
        return text, None
    return text, (delta > 0) == (kpi.direction is Direction.up)


def _status(
    kpi: Kpi,
    value: float | None,
    components: Mapping[str, float],
    threshold: Threshold | None,
    window_s: int,
    firing: Sequence[Alert],
) -> tuple[Status, str]:
    if firing:
        names = ", ".join(sorted({a.name for a in firing}))
        return Status.firing, f"firing: {names}"
    if threshold is None or value is None:
        return Status.plain, ""
    bound = []
    if threshold.lower is not None:
        bound.append(f"alert below {format_value(kpi, threshold.lower, '')}".rstrip())
    if threshold.upper is not None:
        bound.append(f"alert above {format_value(kpi, threshold.upper, '')}".rstrip())
    where = " and ".join(bound).replace("  ", " ")
    if not threshold.breached(value):
        return Status.ok, where
    volume = float(components.get(threshold.volume, 0))
    needed = threshold.min_volume * window_s / threshold.short_s
    if threshold.enough(volume, window_s):
        return Status.breach, f"{where} ({threshold.severity})"
    return Status.low_volume, f"{where}, but {threshold.volume} {volume:,.0f} < {needed:,.0f}"


def build_page(
    document: Mapping[str, Any],
    selection: Selection,
    *,
    windows: Sequence[str],
    campaigns: Iterable[str],
    channels: Iterable[str],
    alert_config: AlertConfig,
    previous: Mapping[str, float | None] | None,
    trend: Sequence[tuple[float, Mapping[str, float | None]]],
    alerts: Sequence[Alert],
    alerts_note: str,
    health: Health,
    scope: str,
    currency: str,
    generated_s: float,
    trend_note: str = "",
) -> Page:
    """Return the page of ``document`` (a ``/kpis`` report of the selection's window).

    ``previous`` holds the selection's KPIs over the window before (None: unknown);
    ``trend`` its KPIs at earlier instants, oldest first.
    """
    window_s = parse_duration_s(selection.window)
    overall = document["overall"]
    components = overall["components"]
    values: Mapping[str, float | None] = overall["kpis"]
    relevant = [a for a in alerts if a.concerns(selection)]
    groups: dict[Category, list[Tile]] = {}
    for kpi in TILE_KPIS:
        value = values.get(kpi.name)
        before = previous.get(kpi.name) if previous is not None else None
        change, good = _change(kpi, value, before)
        status, detail = _status(
            kpi,
            value,
            components,
            thresholds_of(alert_config, selection.campaign).get(kpi.name),
            window_s,
            [a for a in relevant if a.kpi == kpi.name],
        )
        points = tuple((t, kpis.get(kpi.name)) for t, kpis in trend)
        groups.setdefault(kpi.category, []).append(
            Tile(
                kpi,
                value,
                format_value(kpi, value, currency),
                before,
                change,
                good,
                status,
                detail,
                points,
            )
        )
    rows = []
    by_campaign: dict[str, dict[str, Threshold]] = {}
    for cell in document["campaigns"]:
        cell_thresholds = by_campaign.get(cell["campaign"])
        if cell_thresholds is None:
            cell_thresholds = by_campaign[cell["campaign"]] = thresholds_of(
                alert_config, cell["campaign"]
            )
        firing = [
            a
            for a in relevant
            if a.concerns(Selection(selection.window, cell["campaign"], cell["channel"]))
        ]
        texts = []
        for name in TABLE_KPIS:
            kpi = _BY_NAME[name]
            value = cell["kpis"].get(name)
            status, _ = _status(
                kpi,
                value,
                cell["components"],
                cell_thresholds.get(name),
                window_s,
                [a for a in firing if a.kpi == name and "campaign" in a.labels],
            )
            texts.append(Cell(format_value(kpi, value, currency), status))
        if any(c.text not in ("—", "0") for c in texts):  # not an all-empty row
            rows.append(Row(cell["campaign"], cell["channel"], tuple(texts)))
    return Page(
        selection=selection,
        windows=tuple(windows),
        campaigns=tuple(sorted(set(campaigns))),
        channels=tuple(sorted(set(channels))),
        groups=tuple((c, tuple(tiles)) for c, tiles in groups.items()),
        rows=tuple(rows),
        alerts=tuple(relevant),
        alerts_note=alerts_note,
        health=health,
        scope=scope,
        generated_s=generated_s,
        trend_note=trend_note,
    )
