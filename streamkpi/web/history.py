"""Trends for the live page: the window KPIs sampled in memory, bounded (#16).

Every ``sample_s`` the worker's window values are summed per aggregate — all campaigns,
each campaign, each channel, each campaign x channel — and the KPIs of each aggregate
stored as float32 in a ring of ``history_s / sample_s`` samples. Memory is at most
``windows x max_series x samples x KPIs x 4`` bytes (3 x 150 x 196 x 20 x 4 = 7 MB with
the defaults); an aggregate first seen once ``max_series`` are kept has no trend.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping
from decimal import Decimal

from streamkpi.kpis.spec import Labels
from streamkpi.kpis.values import Row, kpi_values
from streamkpi.web.model import TILE_KPIS, Selection

__all__ = ["KpiHistory"]

_NAMES = tuple(k.name for k in TILE_KPIS)
_NAN = float("nan")
Key = tuple[str, str | None, str | None]  # (window, campaign or None, channel or None)


class KpiHistory:
    """A ring of KPI samples per (window, campaign, channel) aggregate."""

    def __init__(self, *, sample_s: float, history_s: float, max_series: int) -> None:
        """Keep ``history_s`` of samples taken every ``sample_s``; ``max_series`` per window."""
        self.sample_s = sample_s
        self.capacity = max(2, math.ceil(history_s / sample_s) + 1)
        self.max_series = max_series
        self._times = array("d", [_NAN] * self.capacity)
        self._series: dict[Key, array[float]] = {}
        self._per_window: dict[str, int] = {}
        self._taken = 0  # samples taken so far; the next goes to _taken % capacity
        self.refused = 0  # aggregates not kept (over max_series)

    @property
    def series(self) -> int:
        """Return how many aggregates are kept."""
        return len(self._series)

    def sample(self, t: float, rows: Iterable[Row]) -> None:
        """Record the KPIs of every aggregate of ``rows`` (window values at ``t``)."""
        sums: dict[Key, dict[str, int | Decimal]] = {}
        for component, window, labels, value in rows:
            if len(labels) != 2:
                continue  # the page breakdown has no tiles
            campaign, channel = labels
            keys: tuple[Key, ...] = (
                (window, None, None),
                (window, campaign, None),
                (window, None, channel),
                (window, campaign, channel),
            )
            for key in keys:
                cell = sums.setdefault(key, {})
                cell[component] = cell.get(component, 0) + value
        slot = self._taken % self.capacity
        width = len(_NAMES)
        self._times[slot] = t
        for ring in self._series.values():  # an aggregate with no rows now has no value
            ring[slot * width : (slot + 1) * width] = array("f", [_NAN] * width)
        for key, components in sums.items():
            found = self._series.get(key) or self._new(key)
            if found is None:
                continue
            kpis = kpi_values(components, Labels.campaign_channel)
            for i, name in enumerate(_NAMES):
                kpi = kpis.get(name)
                found[slot * width + i] = _NAN if kpi is None else kpi
        self._taken += 1

    def _new(self, key: Key) -> array[float] | None:
        window = key[0]
        # The overall aggregate of a window is always kept.
        if key[1:] != (None, None) and self._per_window.get(window, 0) >= self.max_series:
            self.refused += 1
            return None
        self._per_window[window] = self._per_window.get(window, 0) + 1
        ring = array("f", [_NAN] * (self.capacity * len(_NAMES)))
        self._series[key] = ring
        return ring

    def kept(self, selection: Selection) -> bool:
        """Say whether the selection's aggregate has a trend."""
        return (selection.window, selection.campaign, selection.channel) in self._series

    def points(self, selection: Selection) -> list[tuple[float, dict[str, float | None]]]:
        """Return the selection's samples, oldest first: (t, {kpi: value or None})."""
        ring = self._series.get((selection.window, selection.campaign, selection.channel))
        if ring is None:
            return []
        width = len(_NAMES)
        out = []
        first = max(0, self._taken - self.capacity)
        for n in range(first, self._taken):
            slot = n % self.capacity
            values = ring[slot * width : (slot + 1) * width]
            out.append(
                (
                    self._times[slot],
                    {
                        name: None if math.isnan(v) else v
                        for name, v in zip(_NAMES, values, strict=True)
                    },
                )
            )
        return out

    def at(self, selection: Selection, t: float) -> Mapping[str, float | None] | None:
        """Return the selection's KPIs sampled nearest ``t``, or None if none is that close.

        "That close" is within half a sample interval: the previous window's value must
        be the previous window's, not a neighbour's.
        """
        best: tuple[float, dict[str, float | None]] | None = None
        for when, kpis in self.points(selection):
            if abs(when - t) <= self.sample_s / 2 and (
                best is None or abs(when - t) < abs(best[0] - t)
            ):
                best = (when, kpis)
        return None if best is None else best[1]
