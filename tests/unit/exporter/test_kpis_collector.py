"""The component collector: sums partitions exactly, and its fast text equals the slow one."""

from __future__ import annotations

from decimal import Decimal

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streamkpi.exporter.kpis import KpiCollector, WindowValue


class Rows:
    def __init__(self, rows: list[WindowValue]) -> None:
        self.rows = rows

    def window_values(self, reference_s: float) -> list[WindowValue]:
        return self.rows


ROWS: list[WindowValue] = [
    ("sessions", "5m", ("spring", "paid"), 30),
    ("sessions", "5m", ("spring", "paid"), 10),  # another partition: summed
    ("revenue", "5m", ("spring", "paid"), Decimal("0.1")),
    ("revenue", "5m", ("spring", "paid"), Decimal("0.2")),  # exactly 0.3, not 0.30000000000000004
    ("sessions", "1h", ('we"ird\\camp\naign', "email"), 1),  # label values escaped
    ("landing_sessions", "24h", ("/home?a=1",), 5),
]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_partitions_add_up_exactly() -> None:
    registry = CollectorRegistry()
    registry.register(KpiCollector(Rows(ROWS)))
    labels = {"window": "5m", "campaign": "spring", "channel": "paid"}
    assert registry.get_sample_value("streamkpi_sessions", labels) == 40.0
    assert registry.get_sample_value("streamkpi_revenue", labels) == 0.3
    page = {"window": "24h", "page": "/home?a=1"}
    assert registry.get_sample_value("streamkpi_landing_sessions", page) == 5.0


def test_fast_render_parses_to_the_same_samples_as_prometheus_client() -> None:
    collector = KpiCollector(Rows(ROWS))
    registry = CollectorRegistry()
    registry.register(collector)
    slow = samples(generate_latest(registry).decode())
    fast = samples(collector.render().decode())
    assert fast == slow
    assert len(fast) == 4
