"""Grafana JSON building blocks: targets, panels, variables and a grid that places them.

Plain dictionaries in the shape Grafana's dashboard JSON model (schemaVersion 39) expects;
the dashboards module composes them. Nothing here knows about KPIs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from streamkpi.dashboards.ids import DATASOURCE_UID

__all__ = [
    "DATASOURCE",
    "Column",
    "Grid",
    "Json",
    "Thresholds",
    "bargauge",
    "currency_unit",
    "custom_variable",
    "panel_link",
    "query_variable",
    "row",
    "stat",
    "table",
    "target",
    "threshold_steps",
    "timeseries",
]

Json = dict[str, Any]
# (lower, upper): a value below ``lower`` or above ``upper`` breaches; None = no bound.
Thresholds = tuple[float | None, float | None]

DATASOURCE: Json = {"type": "prometheus", "uid": DATASOURCE_UID}

# Grafana's built-in currency units (packages/grafana-data valueFormats, "Currency");
# another reporting currency gets a plain suffix.
_GRAFANA_CURRENCIES = frozenset(
    {
        "USD", "GBP", "EUR", "JPY", "RUB", "UAH", "BRL", "DKK", "ISK", "NOK", "SEK", "CZK", "CHF",
        "PLN", "ZAR", "INR", "KRW", "IDR", "PHP", "VND", "TRY", "MYR", "XPF", "BGN", "PYG", "UYU",
        "ILS",
    }
)  # fmt: skip

_OK, _BREACH, _NEUTRAL = "green", "red", "blue"


def currency_unit(code: str) -> str:
    """Return the Grafana unit of the ISO 4217 currency ``code``."""
    return f"currency{code}" if code in _GRAFANA_CURRENCIES else f"suffix: {code}"


def threshold_steps(bounds: Thresholds | None) -> list[Json]:
    """Return Grafana threshold steps that colour a breach of ``bounds`` red, the rest green.

    Without bounds every value is one neutral colour: no alert, so no verdict.
    """
    lower, upper = bounds if bounds is not None else (None, None)
    if lower is not None and upper is not None and lower > upper:
        raise ValueError(f"lower threshold {lower} is above the upper one {upper}")
    if lower is None and upper is None:
        return [{"color": _NEUTRAL, "value": None}]
    steps: list[Json] = [{"color": _BREACH if lower is not None else _OK, "value": None}]
    if lower is not None:
        steps.append({"color": _OK, "value": lower})
    if upper is not None:
        steps.append({"color": _BREACH, "value": upper})
    return steps


def target(
    expr: str,
    legend: str = "",
    *,
    ref_id: str = "A",
    instant: bool = False,
    table_format: bool = False,
) -> Json:
    """Return a Prometheus query of a panel."""
    out: Json = {
        "datasource": DATASOURCE,
        "editorMode": "code",
        "expr": expr,
        "instant": instant,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "refId": ref_id,
    }
    if table_format:
        out["format"] = "table"
    return out


def _with_refs(targets: Sequence[Json]) -> list[Json]:
    """Give ``targets`` the refIds A, B, C... in order."""
    if len(targets) > 26:
        raise ValueError("a panel holds at most 26 queries")
    return [{**t, "refId": chr(ord("A") + i)} for i, t in enumerate(targets)]


def _field_defaults(
    unit: str,
    bounds: Thresholds | None,
    *,
    color_mode: str,
    min_value: float | None = None,
    max_value: float | None = None,
    custom: Json | None = None,
) -> Json:
    defaults: Json = {
        "color": {"mode": color_mode},
        "mappings": [],
        "thresholds": {"mode": "absolute", "steps": threshold_steps(bounds)},
        "unit": unit,
    }
    if min_value is not None:
        defaults["min"] = min_value
    if max_value is not None:
        defaults["max"] = max_value
    if custom is not None:
        defaults["custom"] = custom
    return defaults


def _panel(
    kind: str,
    title: str,
    description: str,
    targets: Sequence[Json],
    *,
    panel_id: int,
    links: Sequence[Json] = (),
) -> Json:
    if not description:
        raise ValueError(f"panel {title!r} needs a description")
    return {
        "datasource": DATASOURCE,
        "description": description,
        "id": panel_id,
        "links": list(links),
        "targets": _with_refs(targets),
        "title": title,
        "type": kind,
    }


def stat(
    title: str,
    description: str,
    targets: Sequence[Json],
    *,
    panel_id: int,
    unit: str,
    bounds: Thresholds | None = None,
    links: Sequence[Json] = (),
    sparkline: bool = True,
) -> Json:
    """Return a stat panel: the last value, a sparkline, coloured by ``bounds``."""
    panel = _panel("stat", title, description, targets, panel_id=panel_id, links=links)
    panel["fieldConfig"] = {
        "defaults": _field_defaults(unit, bounds, color_mode="thresholds"),
        "overrides": [],
    }
    panel["options"] = {
        "colorMode": "value",
        "graphMode": "area" if sparkline else "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "textMode": "auto",
    }
    return panel


def timeseries(
    title: str,
    description: str,
    targets: Sequence[Json],
    *,
    panel_id: int,
    unit: str,
    bounds: Thresholds | None = None,
    links: Sequence[Json] = (),
    min_value: float | None = None,
    stacked: bool = False,
) -> Json:
    """Return a time-series panel; alert thresholds, if any, are drawn as dashed lines."""
    panel = _panel("timeseries", title, description, targets, panel_id=panel_id, links=links)
    has_bounds = bounds is not None and bounds != (None, None)
    custom: Json = {
        "drawStyle": "line",
        "fillOpacity": 10,
        "lineWidth": 1,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if stacked else "none"},
        "thresholdsStyle": {"mode": "dashed" if has_bounds else "off"},
    }
    panel["fieldConfig"] = {
        "defaults": _field_defaults(
            unit, bounds, color_mode="palette-classic", min_value=min_value, custom=custom
        ),
        "overrides": [],
    }
    panel["options"] = {
        "legend": {"calcs": ["lastNotNull"], "displayMode": "table", "placement": "right"},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return panel


def bargauge(
    title: str,
    description: str,
    targets: Sequence[Json],
    *,
    panel_id: int,
    unit: str,
) -> Json:
    """Return a horizontal bar gauge of the latest values, one bar per series."""
    panel = _panel("bargauge", title, description, targets, panel_id=panel_id)
    panel["fieldConfig"] = {
        "defaults": _field_defaults(unit, None, color_mode="continuous-BlPu", min_value=0),
        "overrides": [],
    }
    panel["options"] = {
        "displayMode": "gradient",
        "orientation": "horizontal",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "showUnfilled": True,
        "valueMode": "color",
    }
    return panel


@dataclass(frozen=True)
class Column:
    """One value column of a table: its query, header and unit."""

    expr: str
    header: str
    unit: str
    gauge: bool = False  # draw the cell as a bar (funnel volumes)


def table(
    title: str,
    description: str,
    keys: Sequence[str],
    columns: Sequence[Column],
    *,
    panel_id: int,
    sort_by: str,
) -> Json:
    """Return a table with one row per ``keys`` label set and one column per query.

    Each column is an instant query in table format; Grafana's ``merge`` joins them on the
    label columns, ``organize`` keeps the keys and names the value columns.
    """
    targets = [target(c.expr, instant=True, table_format=True) for c in columns]
    panel = _panel("table", title, description, targets, panel_id=panel_id)
    refs = [chr(ord("A") + i) for i in range(len(columns))]
    renames = {f"Value #{ref}": c.header for ref, c in zip(refs, columns, strict=True)}
    index = {key: i for i, key in enumerate(keys)}
    index.update({f"Value #{ref}": len(keys) + i for i, ref in enumerate(refs)})
    overrides: list[Json] = []
    for c in columns:
        properties: list[Json] = [{"id": "unit", "value": c.unit}]
        if c.gauge:
            properties.append(
                {"id": "custom.cellOptions", "value": {"type": "gauge", "mode": "basic"}}
            )
        overrides.append(
            {"matcher": {"id": "byName", "options": c.header}, "properties": properties}
        )
    panel["fieldConfig"] = {
        "defaults": _field_defaults("short", None, color_mode="thresholds"),
        "overrides": overrides,
    }
    panel["options"] = {
        "cellHeight": "sm",
        "showHeader": True,
        "sortBy": [{"desc": True, "displayName": sort_by}],
    }
    panel["transformations"] = [
        {"id": "merge", "options": {}},
        {
            "id": "organize",
            "options": {
                # Keep the key labels and the values; drop Time and any other label.
                "excludeByName": {"Time": True},
                "includeByName": dict.fromkeys([*keys, *renames], True),
                "indexByName": index,
                "renameByName": {**{k: k.capitalize() for k in keys}, **renames},
            },
        },
    ]
    return panel


def row(title: str, *, panel_id: int, collapsed: bool = False) -> Json:
    """Return a row panel (its children follow it, or sit inside it when collapsed)."""
    return {
        "collapsed": collapsed,
        "id": panel_id,
        "panels": [],
        "title": title,
        "type": "row",
    }


def custom_variable(name: str, label: str, values: Sequence[str], default: str) -> Json:
    """Return a single-value custom variable (the KPI window)."""
    if default not in values:
        raise ValueError(f"default {default!r} is not one of {list(values)}")
    return {
        "current": {"selected": True, "text": default, "value": default},
        "description": "Trailing window of the KPI records (part of the record names).",
        "hide": 0,
        "label": label,
        "name": name,
        "options": [
            {"selected": value == default, "text": value, "value": value} for value in values
        ],
        "query": ",".join(values),
        "type": "custom",
    }


def query_variable(name: str, label: str, query: str, description: str) -> Json:
    """Return a multi-value Prometheus query variable with "All" (= the regex ``.*``)."""
    return {
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "datasource": DATASOURCE,
        "definition": query,
        "description": description,
        "hide": 0,
        "includeAll": True,
        "label": label,
        "multi": True,
        "name": name,
        "options": [],
        "query": query,  # the classic string form: every Grafana version reads it
        "refresh": 2,  # on time range change: campaigns come and go
        "regex": "",
        "sort": 1,
        "type": "query",
    }


@dataclass
class Grid:
    """Place panels left to right on Grafana's 24-column grid, wrapping to new lines.

    A row starts a new line at full width. A collapsed row keeps its children (placed as
    if it were expanded), so nothing overlaps whichever way the rows are toggled.
    """

    panels: list[Json] = field(default_factory=list)
    _x: int = 0
    _y: int = 0
    _line_h: int = 0
    _open_row: Json | None = None

    def row(self, panel: Json) -> None:
        """Start ``panel`` (a row) on its own line."""
        self._newline()
        panel["gridPos"] = {"h": 1, "w": 24, "x": 0, "y": self._y}
        self._y += 1
        self.panels.append(panel)
        self._open_row = panel if panel["collapsed"] else None

    def add(self, panel: Json, w: int, h: int) -> None:
        """Place ``panel`` at the next free spot ``w`` columns wide and ``h`` high."""
        if not 1 <= w <= 24:
            raise ValueError(f"width {w} is not in 1..24")
        if self._x + w > 24:
            self._newline()
        panel["gridPos"] = {"h": h, "w": w, "x": self._x, "y": self._y}
        self._x += w
        self._line_h = max(self._line_h, h)
        if self._open_row is not None:
            self._open_row["panels"].append(panel)
        else:
            self.panels.append(panel)

    def add_all(self, panels: Sequence[Json], w: int, h: int) -> None:
        """Place ``panels`` one after the other, each ``w`` x ``h``."""
        for panel in panels:
            self.add(panel, w, h)

    def _newline(self) -> None:
        self._y += self._line_h
        self._x = 0
        self._line_h = 0


def panel_link(title: str, url: str) -> Json:
    """Return a panel link (keeps the time range; ``url`` may use ``${var}``)."""
    return {"targetBlank": False, "title": title, "url": url}
