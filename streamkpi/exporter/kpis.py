"""The component gauges ``streamkpi_<component>{window,...}``, summed at scrape time."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Protocol

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streamkpi.kpis.spec import COMPONENTS, Component, Labels

__all__ = ["KpiCollector", "label_names"]

WindowValue = tuple[str, str, tuple[str, ...], int | float | Decimal]


class WindowSource(Protocol):
    """Anything that yields (component, window, label values, value) rows."""

    def window_values(self, reference_s: float) -> Iterable[WindowValue]:
        """Yield the rows as of ``reference_s``."""
        ...


def label_names(component: Component) -> list[str]:
    """Return the Prometheus label names of ``component``'s family."""
    if component.labels is Labels.page:
        return ["window", "page"]
    return ["window", "campaign", "channel"]


class KpiCollector(Collector):
    """Export every component of ``kpis.spec`` from the engines of the owned partitions.

    Built fresh at every scrape from the engines, so the series of a partition that moved
    to another worker disappear here at the next scrape instead of lingering.
    """

    def __init__(self, source: WindowSource) -> None:
        """Read rows from ``source`` at scrape time."""
        self._source = source

    def describe(self) -> Iterable[Metric]:
        """Describe the families without touching the engines."""
        return [self._family(c) for c in COMPONENTS]

    def collect(self) -> Iterator[Metric]:
        """Sum each (component, window, labels) over the owned partitions."""
        # Summed in the engines' own types (int, Decimal) so money adds up exactly; only the
        # exposition is float.
        totals: dict[tuple[str, str, tuple[str, ...]], int | float | Decimal] = {}
        for component, window, labels, value in self._source.window_values(time.time()):
            key = (component, window, labels)
            previous = totals.get(key, 0)
            if isinstance(value, float) or isinstance(previous, float):
                totals[key] = float(previous) + float(value)
            else:
                totals[key] = previous + value
        families = {c.name: self._family(c) for c in COMPONENTS}
        for (component, window, labels), value in sorted(totals.items()):
            families[component].add_metric([window, *labels], float(value))
        yield from families.values()

    @staticmethod
    def _family(component: Component) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            component.metric,
            f"{component.help} Sum over the trailing window.",
            labels=label_names(component),
        )
