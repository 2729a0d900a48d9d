"""KPI values from component sums: the arithmetic behind /kpis and the snapshot topic.

The same rule as the recording rules: sum the components first, then divide; a ratio with
a zero or missing denominator has no value (``None``), a missing numerator counts as 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from streamkpi.kpis.spec import COMPONENTS, KPIS, Kpi, Labels

__all__ = ["Row", "kpi_value", "kpi_values", "report"]

Number = int | Decimal  # what the engine holds: counts and money
Row = tuple[str, str, tuple[str, ...], Number]  # (component, window, label values, value)

_PAGE_COMPONENTS = frozenset(c.name for c in COMPONENTS if c.labels is Labels.page)


def _total(components: Mapping[str, Number], names: tuple[str, ...]) -> Decimal:
    return sum((Decimal(str(components.get(name, 0))) for name in names), Decimal(0))


def kpi_value(kpi: Kpi, components: Mapping[str, Number]) -> float | None:
    """Return ``kpi`` computed from summed ``components``; None for an empty denominator."""
    numerator = _total(components, kpi.numerator) - _total(components, kpi.subtract)
    if not kpi.is_ratio:
        return float(numerator)
    denominator = _total(components, kpi.denominator)
    if denominator <= 0:
        return None
    return float(Decimal(str(kpi.scale)) * numerator / denominator)


def kpi_values(components: Mapping[str, Number], labels: Labels) -> dict[str, float | None]:
    """Return every KPI of the ``labels`` breakdown computed from ``components``."""
    return {k.name: kpi_value(k, components) for k in KPIS if k.labels is labels}


def _plain(value: Number) -> int | float:
    return value if isinstance(value, int) else float(value)


def report(
    rows: Iterable[Row],
    window: str,
    *,
    campaign: str | None = None,
    channel: str | None = None,
) -> dict[str, Any]:
    """Sum ``rows`` of one ``window`` by (campaign, channel) and by page, then compute KPIs.

    ``campaign``/``channel`` filter the campaign x channel rows (the page breakdown has
    neither label and is left out when a filter is given). ``overall`` sums every
    campaign x channel row that passed the filter.
    """
    by_label: dict[tuple[str, str], dict[str, Number]] = {}
    by_page: dict[str, dict[str, Number]] = {}
    overall: dict[str, Number] = {}
    filtered = campaign is not None or channel is not None
    for component, row_window, labels, value in rows:
        if row_window != window:
            continue
        if component in _PAGE_COMPONENTS:
            if not filtered:
                page = by_page.setdefault(labels[0], {})
                page[component] = page.get(component, 0) + value
            continue
        row_campaign, row_channel = labels
        if campaign is not None and row_campaign != campaign:
            continue
        if channel is not None and row_channel != channel:
            continue
        cell = by_label.setdefault((row_campaign, row_channel), {})
        cell[component] = cell.get(component, 0) + value
        overall[component] = overall.get(component, 0) + value
    return {
        "window": window,
        "campaigns": [
            {
                "campaign": c,
                "channel": ch,
                "components": {k: _plain(v) for k, v in sorted(comps.items())},
                "kpis": kpi_values(comps, Labels.campaign_channel),
            }
            for (c, ch), comps in sorted(by_label.items())
        ],
        "pages": [
            {
                "page": page,
                "components": {k: _plain(v) for k, v in sorted(comps.items())},
                "kpis": kpi_values(comps, Labels.page),
            }
            for page, comps in sorted(by_page.items())
        ],
        "overall": {
            "components": {k: _plain(v) for k, v in sorted(overall.items())},
            "kpis": kpi_values(overall, Labels.campaign_channel),
        },
    }
