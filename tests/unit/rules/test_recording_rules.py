"""The committed recording rules are generated from the spec, complete, well named and valid."""

from __future__ import annotations

import difflib
import re

import pytest
import yaml
from _rules_helpers import README, REGENERATE, RULE_FILE, promtool, records

from streamkpi.kpis.spec import COMPONENTS, KPIS, Category, Kpi, Labels, Unit
from streamkpi.rules.recording import build_groups, kpi_expr, render_rule_file

# Written out again here on purpose: the test must not trust the generator's own table.
LEVELS = {
    Labels.campaign_channel: {"campaign_channel": "campaign, channel", "channel": "channel"},
    Labels.page: {"page": "page"},
}
LEVELS_BY_NAME = {level: by for levels in LEVELS.values() for level, by in levels.items()}
NAME = re.compile(
    r"^(?P<level>[a-z_]+):streamkpi_(?P<metric>[a-z0-9_]+):(?P<op>ratio|sum)(?P<window>\d+[smhdw])$"
)


def kpi_records(windows: tuple[str, ...]) -> set[str]:
    return {
        f"{level}:streamkpi_{k.name}:{'ratio' if k.denominator else 'sum'}{w}"
        for k in KPIS
        for level in [*LEVELS[k.labels], "overall"]
        for w in windows
    }


def test_committed_rule_file_equals_a_fresh_generation(default_windows: tuple[str, ...]) -> None:
    fresh = render_rule_file(default_windows)
    committed = RULE_FILE.read_text()
    diff = "".join(
        difflib.unified_diff(
            committed.splitlines(keepends=True),
            fresh.splitlines(keepends=True),
            "committed",
            "generated",
            n=1,
        )
    )
    assert committed == fresh, f"{RULE_FILE} is stale: {REGENERATE}.\n{diff[:4000]}"


def test_every_kpi_window_and_level_has_exactly_one_rule(default_windows: tuple[str, ...]) -> None:
    names = list(records())
    assert len(names) == len(set(names)), "a record name appears twice"
    expected = kpi_records(default_windows)
    assert expected <= set(names), sorted(expected - set(names))
    # 20 KPIs x 3 levels + the landing-page one x 2 levels, x 3 windows
    assert len(expected) == 186


def test_component_sums_are_recorded_once_each(default_windows: tuple[str, ...]) -> None:
    # why: a plain-sum KPI (traffic = pageviews, sessions, ...) is that component's sum
    plain = {k.numerator[0]: k.name for k in KPIS if not k.denominator}
    expected = {
        f"{level}:streamkpi_{c.name}:sum{w}"
        for c in COMPONENTS
        if c.name not in plain
        for level in [*LEVELS[c.labels], "overall"]
        for w in default_windows
    }
    names = set(records())
    assert names - kpi_records(default_windows) == expected
    # 186 KPI rules + 30 campaign/channel components x 3 levels + 3 page components x 2, x 3
    assert len(names) == 474
    assert "campaign_channel:streamkpi_pageviews:sum5m" not in names  # it is ...:traffic:sum5m


def test_names_follow_level_metric_operations(default_windows: tuple[str, ...]) -> None:
    ratio = {k.name for k in KPIS if k.denominator}
    for name in records():
        match = NAME.match(name)
        assert match, name
        assert match["level"] in {"campaign_channel", "channel", "page", "overall"}, name
        assert match["window"] in default_windows, name
        assert (match["op"] == "ratio") == (match["metric"] in ratio), name


def test_expressions_read_their_window_and_sum_by_their_level() -> None:
    for name, expr in records().items():
        match = NAME.match(name)
        assert match, name
        assert set(re.findall(r'window="([^"]+)"', expr)) == {match["window"]}, name
        groupings = set(re.findall(r"sum by \(([^)]*)\)", expr))
        if match["level"] == "overall":
            assert not groupings, name
            assert "sum(" in expr, name
        else:
            assert groupings == {LEVELS_BY_NAME[match["level"]]}, name
        assert "avg" not in expr, name  # ratios divide sums, never average ratios


def test_ratio_rules_guard_the_denominator_and_fill_missing_numerators() -> None:
    for name, expr in records().items():
        if ":ratio" not in name:
            assert "/" not in expr, name
            continue
        numerator, denominator = expr.rsplit("\n/ ", 1)
        assert denominator.startswith("(sum"), name
        assert denominator.endswith(" > 0)"), name
        assert " or 0 * " in numerator, name


@pytest.mark.parametrize(
    ("kpi", "expected"),
    [
        # why: a decided denominator of two components is one sum over both metrics, so a
        # channel with engaged but no bounced sessions still reads 0 (and the reverse 1)
        (
            "bounce_rate",
            '(sum by (channel) (streamkpi_bounced_sessions{window="5m"}) '
            "or 0 * sum by (channel) "
            '({__name__=~"streamkpi_bounced_sessions|streamkpi_engaged_sessions", window="5m"}))\n'
            "/ (sum by (channel) "
            '({__name__=~"streamkpi_bounced_sessions|streamkpi_engaged_sessions", window="5m"})'
            " > 0)",
        ),
        # why: ROI's subtrahend is its denominator, which needs no filler where it divides
        (
            "roi",
            "(\n"
            '    (sum by (channel) (streamkpi_revenue{window="5m"}) '
            'or 0 * sum by (channel) (streamkpi_ad_spend{window="5m"}))\n'
            '  - sum by (channel) (streamkpi_ad_spend{window="5m"})\n'
            ")\n"
            '/ (sum by (channel) (streamkpi_ad_spend{window="5m"}) > 0)',
        ),
        # why: both NPS sides may be missing; the scale multiplies before dividing
        (
            "nps",
            "100 * (\n"
            '    (sum by (channel) (streamkpi_nps_promoters{window="5m"}) '
            'or 0 * sum by (channel) (streamkpi_nps_responses{window="5m"}))\n'
            '  - (sum by (channel) (streamkpi_nps_detractors{window="5m"}) '
            'or 0 * sum by (channel) (streamkpi_nps_responses{window="5m"}))\n'
            ")\n"
            '/ (sum by (channel) (streamkpi_nps_responses{window="5m"}) > 0)',
        ),
        # why: a plain sum is just the workers' sum
        ("traffic", 'sum by (channel) (streamkpi_pageviews{window="5m"})'),
    ],
)
def test_expression_shapes(kpi: str, expected: str) -> None:
    spec = next(k for k in KPIS if k.name == kpi)
    assert kpi_expr(spec, "5m", ("channel",)) == expected


def test_multi_component_terms_treat_a_missing_term_as_zero() -> None:
    # why: the spec allows tuples; a label set with only one of two terms must still add up
    spec = Kpi(
        "x_rate",
        Category.paid,
        Unit.ratio,
        KPIS[0].direction,
        "test",
        ("revenue", "refunded_revenue"),
        ("purchases", "refunds"),
    )
    expr = kpi_expr(spec, "1h", ())
    den = 'sum({__name__=~"streamkpi_purchases|streamkpi_refunds", window="1h"})'
    assert f'(sum(streamkpi_revenue{{window="1h"}}) or 0 * {den})' in expr
    assert f'(sum(streamkpi_refunded_revenue{{window="1h"}}) or 0 * {den})' in expr
    assert expr.endswith(f"/ ({den} > 0)")


def test_groups_one_per_category_then_components_each_with_a_comment() -> None:
    text = RULE_FILE.read_text()
    lines = text.splitlines()
    group_lines = [i for i, line in enumerate(lines) if line.startswith("  - name: ")]
    names = [lines[i].removeprefix("  - name: ") for i in group_lines]
    categories = [c.name for c in Category if any(k.category is c for k in KPIS)]
    assert names == [f"streamkpi.kpis.{c}" for c in categories] + ["streamkpi.components"]
    for i in group_lines:
        assert lines[i - 1].startswith("  # "), f"group {lines[i]} has no comment"
    data = yaml.safe_load(text)
    assert all(set(group) == {"name", "rules"} for group in data["groups"])  # global interval


def test_windows_come_from_the_argument_and_are_validated() -> None:
    groups = build_groups(["1m", "7d"])
    names = {rule["record"] for group in groups for rule in group["rules"]}
    assert "overall:streamkpi_cpa:ratio7d" in names
    assert not any(name.endswith("5m") for name in names)
    with pytest.raises(ValueError, match="not a duration"):
        build_groups(["5 m"])
    with pytest.raises(ValueError, match="repeat"):
        build_groups(["5m", "5m"])


def test_a_kpi_named_like_a_component_but_computing_something_else_is_refused() -> None:
    clash = Kpi("pageviews", Category.acquisition, Unit.number, KPIS[0].direction, "x", ("leads",))
    with pytest.raises(ValueError, match="pageviews"):
        build_groups(["5m"], kpis=[*KPIS, clash])


def test_rendering_is_deterministic(default_windows: tuple[str, ...]) -> None:
    assert render_rule_file(default_windows) == render_rule_file(list(default_windows))


def test_promtool_check_rules_is_clean() -> None:
    result = promtool("check", "rules", str(RULE_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(records())} rules found" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr
    assert "duplicate" not in (result.stdout + result.stderr).lower()


def test_readme_recording_rules_table_matches_the_generator() -> None:
    rows = []
    for k in KPIS:
        levels = ",".join([*LEVELS[k.labels], "overall"])
        op = "ratio" if k.denominator else "sum"
        shape = kpi_expr(k, "W", ("L",))
        shape = re.sub(r'sum by \(L\) \(streamkpi_(\w+)\{window="W"\}\)', r"Σ\1", shape)
        shape = re.sub(
            r'sum by \(L\) \(\{__name__=~"([^"]+)", window="W"\}\)',
            lambda m: "Σ(" + " + ".join(n[len("streamkpi_") :] for n in m[1].split("|")) + ")",
            shape,
        )
        shape = re.sub(r"\s+", " ", shape).replace("( ", "(").replace(" )", ")")
        rows.append(f"| `{k.name}` | `{{{levels}}}:streamkpi_{k.name}:{op}<w>` | `{shape}` |")
    text = README.read_text()
    missing = [row for row in rows if row not in text]
    assert not missing, "README.md's recording-rules table is stale; expected rows:\n" + "\n".join(
        missing
    )
