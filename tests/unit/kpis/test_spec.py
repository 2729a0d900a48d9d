"""The KPI table is consistent, and the README's KPI table is generated from it."""

from __future__ import annotations

from pathlib import Path

from streamkpi.kpis.config import EngineConfig
from streamkpi.kpis.spec import COMPONENTS, KPIS, Kpi, Labels, component

README = Path(__file__).resolve().parents[3] / "README.md"


def test_names_are_unique_and_prometheus_safe() -> None:
    names = [c.name for c in COMPONENTS]
    assert len(names) == len(set(names))
    assert len({k.name for k in KPIS}) == len(KPIS)
    for name in names:
        assert name.replace("_", "").isalnum(), name
        assert name.islower(), name


def test_every_kpi_reads_existing_components_with_its_labels() -> None:
    for k in KPIS:
        for name in k.components:
            assert component(name).labels is k.labels, (k.name, name)


def test_ratio_kpis_have_a_denominator_and_plain_ones_do_not_subtract() -> None:
    for k in KPIS:
        if not k.is_ratio:
            assert not k.subtract, k.name
            assert len(k.numerator) == 1, k.name


def formula(k: Kpi) -> str:
    num = " + ".join(k.numerator)
    if k.subtract:
        num = f"{num} - {' - '.join(k.subtract)}"
    if not k.denominator:
        return num
    den = " + ".join(k.denominator)
    den = f"({den})" if len(k.denominator) > 1 else den
    text = f"({num}) / {den}" if k.subtract or len(k.numerator) > 1 else f"{num} / {den}"
    return f"{k.scale:g} * {text}" if k.scale != 1 else text


def delay_text(k: Kpi) -> str:
    """Return the README's detection delay of ``k`` with the default settings."""
    if not k.delay:
        return "none"
    seconds = sum(int(getattr(EngineConfig(), name)) for name in k.delay)
    days, rest = divmod(seconds, 86_400)
    text = f"{days} d" if days and not rest else f"{seconds // 60} min"
    return f"{text} ({' + '.join(f'`{name}`' for name in k.delay)})"


def test_readme_kpi_table_matches_the_spec() -> None:
    rows = [
        f"| {k.category.value} | `{k.name}` | {k.help} | `{formula(k)}` | {k.unit.value} "
        f"| {k.direction.value} | {k.attribution} | {delay_text(k)} |"
        for k in KPIS
    ]
    text = README.read_text()
    missing = [row for row in rows if row not in text]
    assert not missing, "README.md's KPI table is stale; expected rows:\n" + "\n".join(missing)


def test_page_components_are_the_landing_ones() -> None:
    assert {c.name for c in COMPONENTS if c.labels is Labels.page} == {
        "landing_sessions",
        "landing_engaged_sessions",
        "landing_bounced_sessions",
    }


def test_readme_metrics_table_lists_every_component_gauge() -> None:
    # why: the Metrics table was left behind when #11 added seven components
    text = README.read_text()
    for labels, names in (("campaign_channel", "`campaign`, `channel`"), ("page", "`page`")):
        gauges = ", ".join(f"`{c.metric}`" for c in COMPONENTS if c.labels.name == labels)
        assert f"| {gauges} | `window`" in text, gauges
        assert names in text
