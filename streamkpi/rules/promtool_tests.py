"""promtool unit tests for every recording rule, expected values computed in plain Python.

The generated test writes component series as two workers would export them and expects, for
every rule name of the naming scheme, the samples computed here by arithmetic over those same
series: per label set of the level, ``scale * (sum(numerator) - sum(subtract)) /
sum(denominator)``; no sample when the denominator has no series or sums to 0, a missing
component counting 0 otherwise. Nothing here reads the PromQL of ``recording.py`` (names and
levels are rebuilt from the naming scheme), so the two can only agree by both being right.

The inputs mix three kinds of label sets:

- a grid of campaigns x channels (pages for landing components) where each worker's series
  is present with probability 3/4 and holds a pseudo-random value (a hash, so the file is
  the same on every machine and Python version); values differ per window, so a rule that
  reads the wrong window is caught;
- per ratio KPI a campaign with only that KPI's denominator series (its numerator missing,
  as the exporter omits zeros): the ratio must be 0 (ROI: -1), not absent. Of a decided
  denominator (bounce: bounced + engaged) only the part that is not the numerator (engaged);
- a campaign/channel (and a page) whose every series is 0: no ratio sample, sums of 0.

Then, per ratio KPI, two more cases with that KPI's series alone: only its denominator (0, or
-1 for ROI, at *every* level) and all its components at 0 (no sample at every level).

Values are whole numbers (money: quarters), so every sum is exact in float64 and the one
rounding step, the final division, is the same IEEE operation in Go and in Python.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import yaml

from streamkpi.kpis.spec import COMPONENTS, KPIS, Component, Kpi, Labels, Unit

__all__ = [
    "RULE_FILE",
    "Series",
    "denominator_only_campaign",
    "expected_samples",
    "input_series",
    "isolated_series",
    "render_promtool_tests",
]

RULE_FILE = "../rules/streamkpi-kpis.yml"  # relative to deploy/prometheus/tests/

WORKERS = ("worker-a:6066", "worker-b:6066")
CAMPAIGNS = ("spring", "summer")
CHANNELS = ("paid", "email", "social")
PAGES = ("/", "/pricing", "/blog")
ZERO_CAMPAIGN, ZERO_CHANNEL, ZERO_PAGE = "all-zero", "direct", "/all-zero"
DENOMINATOR_ONLY_CHANNEL = "referral"
_SALT = "streamkpi-promtool-v1"

# The aggregation levels of each label set, written out again on purpose (see module doc).
_LEVELS: dict[Labels, tuple[tuple[str, tuple[str, ...]], ...]] = {
    Labels.campaign_channel: (
        ("campaign_channel", ("campaign", "channel")),
        ("channel", ("channel",)),
        ("overall", ()),
    ),
    Labels.page: (("page", ("page",)), ("overall", ())),
}

# (component, labels without window/worker, worker, window) -> value
Series = dict[tuple[str, tuple[tuple[str, str], ...], str, str], float]


def denominator_only_campaign(kpi: Kpi) -> str:
    """Return the campaign whose only series are ``kpi``'s denominator components."""
    return f"denominator-only-{kpi.name}"


def numerator_free_denominator(kpi: Kpi) -> tuple[str, ...]:
    """Return the denominator components of ``kpi`` that are not also its numerator.

    A decided denominator contains its numerator (bounce rate: bounced / (bounced +
    engaged)); a series of "only the denominator, numerator missing" is then the engaged one.
    """
    rest = tuple(n for n in kpi.denominator if n not in kpi.numerator)
    return rest or kpi.denominator


def _hash(*parts: str) -> int:
    digest = hashlib.sha256("|".join((_SALT, *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _value(comp: Component, labels: tuple[tuple[str, str], ...], worker: str, window: str) -> float:
    h = _hash(comp.name, repr(labels), worker, window, "value")
    if comp.unit is Unit.currency:
        return (h % 4000) / 4  # 0 .. 999.75 in quarters
    return float(h % 41)  # 0 .. 40, zeros included


def _grid(comp: Component) -> list[tuple[tuple[str, str], ...]]:
    if comp.labels is Labels.page:
        return [(("page", page),) for page in PAGES]
    return [(("campaign", c), ("channel", ch)) for c in CAMPAIGNS for ch in CHANNELS]


def input_series(
    windows: Sequence[str],
    kpis: Sequence[Kpi] = KPIS,
    components: Sequence[Component] = COMPONENTS,
) -> Series:
    """Return the component series of the test, keyed by (component, labels, worker, window)."""
    series: Series = {}
    for window in windows:
        for comp in components:
            for labels in _grid(comp):
                for worker in WORKERS:
                    if _hash(comp.name, repr(labels), worker, window, "present") % 4:
                        series[comp.name, labels, worker, window] = _value(
                            comp, labels, worker, window
                        )
            zero: tuple[tuple[str, str], ...] = (
                (("page", ZERO_PAGE),)
                if comp.labels is Labels.page
                else (("campaign", ZERO_CAMPAIGN), ("channel", ZERO_CHANNEL))
            )
            series[comp.name, zero, WORKERS[0], window] = 0.0
        for kpi in kpis:
            if not kpi.is_ratio:
                continue
            for name in numerator_free_denominator(kpi):
                comp = next(c for c in components if c.name == name)
                labels = (
                    (("page", f"/{denominator_only_campaign(kpi)}"),)
                    if comp.labels is Labels.page
                    else (
                        ("campaign", denominator_only_campaign(kpi)),
                        ("channel", DENOMINATOR_ONLY_CHANNEL),
                    )
                )
                for worker in WORKERS:  # at least 1 each, so the denominator is never 0
                    series[name, labels, worker, window] = _value(comp, labels, worker, window) + 1
    return series


def _sums(series: Series, name: str, window: str, keep: tuple[str, ...]) -> dict[str, float]:
    """Sum ``name``'s series of ``window`` by the labels ``keep``, keyed by a label string."""
    sums: dict[str, float] = {}
    for (comp, labels, _worker, win), value in series.items():
        if comp == name and win == window:
            key = ",".join(f'{k}="{v}"' for k, v in labels if k in keep)
            sums[key] = sums.get(key, 0.0) + value
    return sums


def _kpi_values(kpi: Kpi, series: Series, window: str, keep: tuple[str, ...]) -> dict[str, float]:
    plus = [_sums(series, n, window, keep) for n in kpi.numerator]
    minus = [_sums(series, n, window, keep) for n in kpi.subtract]
    if kpi.is_ratio:
        dens = [_sums(series, n, window, keep) for n in kpi.denominator]
        keys = {key for den in dens for key in den}
    else:
        dens = []
        keys = {key for part in plus + minus for key in part}
    values: dict[str, float] = {}
    for key in keys:
        numerator = sum(p.get(key, 0.0) for p in plus) - sum(m.get(key, 0.0) for m in minus)
        if kpi.scale != 1:
            numerator = kpi.scale * numerator
        if not kpi.is_ratio:
            values[key] = numerator
            continue
        denominator = sum(d.get(key, 0.0) for d in dens)
        if denominator > 0:
            values[key] = numerator / denominator
    return values


def _plain_sum_kpis(kpis: Iterable[Kpi]) -> set[str]:
    """Return the components some plain-sum KPI already is (their rule is the KPI's)."""
    return {
        k.numerator[0]
        for k in kpis
        if not k.is_ratio and len(k.numerator) == 1 and not k.subtract and k.scale == 1
    }


def expected_samples(
    windows: Sequence[str],
    series: Series,
    kpis: Sequence[Kpi] = KPIS,
    components: Sequence[Component] = COMPONENTS,
) -> dict[str, dict[str, float]]:
    """Return, per rule name, the expected samples: label string -> value."""
    expected: dict[str, dict[str, float]] = {}
    for kpi in kpis:
        op = "ratio" if kpi.is_ratio else "sum"
        for level, keep in _LEVELS[kpi.labels]:
            for window in windows:
                name = f"{level}:streamkpi_{kpi.name}:{op}{window}"
                expected[name] = _kpi_values(kpi, series, window, keep)
    covered = _plain_sum_kpis(kpis)
    for comp in components:
        if comp.name in covered:
            continue
        for level, keep in _LEVELS[comp.labels]:
            for window in windows:
                name = f"{level}:streamkpi_{comp.name}:sum{window}"
                expected[name] = _sums(series, comp.name, window, keep)
    return expected


def _series_text(name: str, labels: Iterable[tuple[str, str]]) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}"


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


_HEADER = """\
# Generated by `streamkpi rules generate` (streamkpi/rules/promtool_tests.py). Do not edit.
# Run: promtool test rules deploy/prometheus/tests/*.yml
# Every recording rule of ../rules/streamkpi-kpis.yml against samples computed in Python
# from the input series below (two workers, a random campaign x channel grid, a
# denominator-only campaign per ratio KPI, an all-zero label set); see the module's docstring
# for how. Then, per ratio KPI, a case with only its denominator series (the KPI is 0, ROI
# -1, at every level) and a case with all its series at 0 (no sample at any level).
# Hand-written cases with comments: streamkpi-kpis-cases.yml.
"""


def isolated_series(
    kpi: Kpi, windows: Sequence[str], components: Sequence[Component], *, zero: bool
) -> Series:
    """Return series of ``kpi`` alone: only its denominator (or all its components at 0).

    In the shared grid every level except the finest always has a numerator somewhere; these
    cases make the "missing numerator is 0" and "zero denominator is no sample" paths show at
    the channel and overall levels too.
    """
    names = kpi.components if zero else numerator_free_denominator(kpi)
    series: Series = {}
    for window in windows:
        for name in names:
            comp = next(c for c in components if c.name == name)
            grid: list[tuple[tuple[str, str], ...]] = (
                [(("page", "/"),), (("page", "/pricing"),)]
                if comp.labels is Labels.page
                else [
                    (("campaign", "spring"), ("channel", "paid")),
                    (("campaign", "summer"), ("channel", "paid")),
                    (("campaign", "spring"), ("channel", "email")),
                ]
            )
            for labels in grid:
                for worker in WORKERS:
                    value = 0.0 if zero else _value(comp, labels, worker, window) + 1
                    series[name, labels, worker, window] = value
    return series


def _test_case(series: Series, expected: dict[str, dict[str, float]]) -> dict[str, Any]:
    return {
        "interval": "1m",
        "input_series": [
            {
                "series": _series_text(
                    f"streamkpi_{comp}",
                    [*labels, ("window", window), ("instance", worker), ("job", "streamkpi")],
                ),
                "values": _number(value),
            }
            for (comp, labels, worker, window), value in series.items()
        ],
        "promql_expr_test": [
            {
                "expr": name,
                "eval_time": "0m",
                "exp_samples": [
                    {"labels": f"{name}{{{key}}}" if key else name, "value": value}
                    for key, value in sorted(samples.items())
                ],
            }
            for name, samples in expected.items()
        ],
    }


def render_promtool_tests(
    windows: Sequence[str],
    kpis: Sequence[Kpi] = KPIS,
    components: Sequence[Component] = COMPONENTS,
) -> str:
    """Return the generated promtool test file: the shared grid, then two cases per ratio KPI."""
    series = input_series(windows, kpis, components)
    tests = [_test_case(series, expected_samples(windows, series, kpis, components))]
    for kpi in kpis:
        if kpi.is_ratio:
            for zero in (False, True):
                alone = isolated_series(kpi, windows, components, zero=zero)
                tests.append(_test_case(alone, expected_samples(windows, alone, [kpi], [])))
    document: dict[str, Any] = {
        "rule_files": [RULE_FILE],
        "evaluation_interval": "1m",
        "tests": tests,
    }
    return _HEADER + yaml.safe_dump(document, sort_keys=False, width=10_000)
