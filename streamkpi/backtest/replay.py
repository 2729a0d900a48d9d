"""Replay the live generator's traffic through the in-process engine, sampled like a scrape.

The live generator (``streamkpi.generator.live``, the batch stream's builders driven by
arrival processes, with the campaigns' funnels and ad costs calibrated to their ROAS) is
advanced in simulated event time, one sample interval at a time. Its records go through
``events.parse`` and one ``PartitionEngine`` (one worker owning one partition) in
production order; at every sample time ``t`` every topic's watermark is raised to ``t -
allowed_lateness_s`` (what a worker's idle advance does when its clock is the event
time), then ``engine.window_values(t)`` is read and summed per series, exactly as the
exporter's collector does, with its metric names and labels (``exporter.kpis``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from streamkpi.app import parse_context
from streamkpi.config import Settings
from streamkpi.events import Kind, Rejection, parse
from streamkpi.exporter.kpis import label_names
from streamkpi.generator.live import LiveConfig, LiveGenerator
from streamkpi.kpis.config import EngineConfig
from streamkpi.kpis.engine import PartitionEngine
from streamkpi.kpis.spec import COMPONENTS

__all__ = ["Samples", "replay", "series_name"]

_BY_NAME = {c.name: c for c in COMPONENTS}


def series_name(component: str, window: str, labels: tuple[str, ...]) -> str:
    """Return the exporter's series of a window value: ``streamkpi_x{window=...,...}``."""
    names = label_names(_BY_NAME[component])
    values = (window, *labels)
    pairs = ",".join(
        f'{name}="{_escape(value)}"' for name, value in zip(names, values, strict=True)
    )
    return f"streamkpi_{component}{{{pairs}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass
class Samples:
    """Series values sampled every ``step_s`` from ``start_s``: None where absent (zero)."""

    start_s: float
    step_s: float
    steps: int = 0
    series: dict[str, list[float | None]] = field(default_factory=dict)
    events: Counter[str] = field(default_factory=Counter)

    def add(self, values: dict[str, float]) -> None:
        """Append one sample of every series (series not in ``values`` are absent)."""
        for name, value in values.items():
            column = self.series.get(name)
            if column is None:
                column = self.series[name] = [None] * self.steps
            column.append(value)
        self.steps += 1
        for column in self.series.values():
            if len(column) < self.steps:
                column.append(None)

    def times(self) -> Iterator[float]:
        """Yield the sample times."""
        for index in range(self.steps):
            yield self.start_s + index * self.step_s


def replay(
    live: LiveConfig,
    engine: EngineConfig,
    *,
    origin_s: float,
    duration_s: float,
    sample_from_s: float | None = None,
    step_s: float = 60.0,
    metrics: frozenset[str] | None = None,
) -> Samples:
    """Run ``live`` for ``duration_s`` from ``origin_s`` through one engine; sample it.

    Samples are taken every ``step_s`` from ``sample_from_s`` (default ``origin_s``) to
    the end; ``metrics`` (metric names) limits the series kept. The incidents' ``at``
    counts from ``origin_s``.
    """
    settings = Settings(topic_partitions=1, reporting_currency="EUR")
    context = parse_context(settings)
    generator = LiveGenerator(live, origin_s, duration_s)
    partition = PartitionEngine(0, engine)
    offsets: Counter[Kind] = Counter()
    first = origin_s if sample_from_s is None else sample_from_s
    samples = Samples(first, step_s)
    end_s = origin_s + duration_s
    t = origin_s
    while t < end_s:
        t = min(t + step_s, end_s)
        for record in generator.advance(t):
            offset = offsets[record.kind]
            offsets[record.kind] += 1
            # The parse clock: the event time now, as a worker consuming live traffic.
            event = parse(record.kind, record.value, context, t)
            if isinstance(event, Rejection):
                partition.record_offset(record.kind, offset)
                samples.events["invalid"] += 1
                continue
            samples.events[partition.process(record.kind, event, offset).value] += 1
        for kind in Kind:
            partition.advance_watermark(kind, t - engine.allowed_lateness_s)
        if t + 1e-9 < first:
            continue
        while samples.start_s + samples.steps * step_s <= t + 1e-9:
            reference = samples.start_s + samples.steps * step_s
            totals: dict[str, float] = {}
            sums: dict[str, int | Decimal] = {}
            for component, window, labels, value in partition.window_values(reference):
                name = series_name(component, window, labels)
                if metrics is not None and f"streamkpi_{component}" not in metrics:
                    continue
                sums[name] = sums.get(name, 0) + value
            for name, value in sums.items():
                if value:
                    totals[name] = float(value)
            samples.add(totals)
    return samples
