"""PromQL of the dashboards: recording-rule names, filtered selectors, selection aggregates.

Panels read the recording rules of deploy/prometheus/rules (never the raw worker gauges for
KPIs): one series per level, already summed over the workers. The window is part of a
record's name, so ``$window`` goes into the name (``...:ratio$window``).

A selection of several campaigns or channels cannot average the per-(campaign, channel)
ratios: :func:`selection_expr` sums each component's record over the selected series, then
divides, exactly as the rules do ("sum the numerator, sum the denominator, divide").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from streamkpi.kpis.spec import KPIS, Component, Kpi, Labels
from streamkpi.rules.recording import LEVELS, record_name

__all__ = [
    "WINDOW",
    "breakdown_level",
    "component_record",
    "finest_level",
    "formula",
    "kpi_record",
    "level_labels",
    "selection_expr",
    "selector",
]

WINDOW = "$window"  # the dashboard variable holding the window


def level_labels(labels: Labels, level: str) -> tuple[str, ...]:
    """Return the labels a record of ``level`` keeps (for components/KPIs keyed by ``labels``)."""
    for name, kept in LEVELS[labels]:
        if name == level:
            return kept
    raise ValueError(f"{labels.value} has no level {level!r}")


def finest_level(labels: Labels) -> str:
    """Return the most detailed level (``campaign_channel``, ``page``)."""
    return LEVELS[labels][0][0]


def breakdown_level(labels: Labels) -> str:
    """Return the level just above ``overall`` (``channel``, ``page``): the overview's split."""
    return LEVELS[labels][-2][0]


def kpi_record(kpi: Kpi, level: str, window: str = WINDOW) -> str:
    """Return the record name of ``kpi`` at ``level`` over ``window``."""
    level_labels(kpi.labels, level)  # refuse a level the KPI is not recorded at
    return record_name(level, kpi.name, "ratio" if kpi.is_ratio else "sum", window)


def _recorded_as(component: Component, kpis: Sequence[Kpi] = KPIS) -> str:
    """Return the name a component's sums are recorded under.

    The rule generator records a component that a plain-sum KPI already is (``pageviews`` is
    ``traffic``) only under the KPI's name.
    """
    for k in kpis:
        plain = not k.is_ratio and not k.subtract and k.scale == 1
        if plain and k.numerator == (component.name,) and k.labels is component.labels:
            return k.name
    return component.name


def component_record(component: Component, level: str, window: str = WINDOW) -> str:
    """Return the record name of ``component``'s sum at ``level`` over ``window``."""
    level_labels(component.labels, level)
    return record_name(level, _recorded_as(component), "sum", window)


def selector(metric: str, filters: Mapping[str, str]) -> str:
    """Return ``metric{label=~"value", ...}`` (regex matchers: variables may be multi-value)."""
    if not filters:
        return metric
    matchers = ", ".join(f'{label}=~"{value}"' for label, value in filters.items())
    return f"{metric}{{{matchers}}}"


def _sum(metric: str, by: Sequence[str]) -> str:
    return f"sum by ({', '.join(by)}) ({metric})" if by else f"sum({metric})"


def selection_expr(
    kpi: Kpi,
    components: Mapping[str, Component],
    filters: Mapping[str, str],
    by: Sequence[str] = (),
    window: str = WINDOW,
) -> str:
    """Return ``kpi`` over the series matching ``filters``, summed ``by`` labels, then divided.

    Same shape as the recording rules: ``(Σnum or 0 * Σden) / (Σden > 0)``, so an empty
    selection gives no sample, and a selection with a denominator but no numerator gives 0.
    """
    level = finest_level(kpi.labels)

    def term(name: str) -> str:
        record = component_record(components[name], level, window)
        return _sum(selector(record, filters), by)

    plus = [term(n) for n in kpi.numerator]
    minus = [term(n) for n in kpi.subtract]
    scale = "" if kpi.scale == 1 else f"{kpi.scale:g} * "
    if not kpi.is_ratio:
        terms = plus + minus
        if len(terms) == 1:
            return f"{scale}{terms[0]}"
        zero = "0 * (" + " or ".join(terms) + ")"
        padded = [f"({t} or {zero})" for t in terms]
        body = " + ".join(padded[: len(plus)]) + "".join(f" - {t}" for t in padded[len(plus) :])
        return f"{scale}({body})"
    dens = [term(n) for n in kpi.denominator]
    if len(dens) == 1:
        den = dens[0]
    else:
        den_zero = "0 * (" + " or ".join(dens) + ")"
        den = "(" + " + ".join(f"({d} or {den_zero})" for d in dens) + ")"
    zero = f"0 * {den}"

    def filled(t: str) -> str:
        return t if t == den else f"({t} or {zero})"

    body = " + ".join(filled(t) for t in plus) + "".join(f" - {filled(t)}" for t in minus)
    numerator = body if len(plus) + len(minus) == 1 else f"({body})"
    return f"{scale}{numerator} / ({den} > 0)"


def formula(kpi: Kpi) -> str:
    """Return the KPI's formula over component sums, as people write it."""
    top = " + ".join(kpi.numerator) + "".join(f" - {n}" for n in kpi.subtract)
    if len(kpi.numerator) + len(kpi.subtract) > 1 and (kpi.is_ratio or kpi.scale != 1):
        top = f"({top})"
    scale = "" if kpi.scale == 1 else f"{kpi.scale:g} * "
    if not kpi.is_ratio:
        return f"{scale}{top}"
    bottom = " + ".join(kpi.denominator)
    if len(kpi.denominator) > 1:
        bottom = f"({bottom})"
    return f"{scale}{top} / {bottom}"
