"""`promtool test rules` checks every recording rule against values computed by hand or in Python.

deploy/prometheus/tests/streamkpi-kpis-cases.yml is hand-written (each case says why);
streamkpi-kpis.generated.yml covers every rule, its expected values computed by
streamkpi/rules/promtool_tests.py with plain arithmetic, whose oracle is itself pinned below.
"""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from _rules_helpers import DEPLOY, GENERATED_TESTS, REGENERATE, RULE_FILE, promtool, records

from streamkpi.kpis.spec import KPIS, Category, Direction, Kpi, Unit, kpi
from streamkpi.rules.promtool_tests import (
    Series,
    denominator_only_campaign,
    expected_samples,
    render_promtool_tests,
)
from streamkpi.rules.recording import render_rule_file

TEST_FILES = sorted((DEPLOY / "tests").glob("*.yml"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def exprs_tested_in(path: Path) -> set[str]:
    return {t["expr"] for case in load(path)["tests"] for t in case["promql_expr_test"]}


def test_committed_promtool_tests_equal_a_fresh_generation(
    default_windows: tuple[str, ...],
) -> None:
    fresh = render_promtool_tests(default_windows)
    committed = GENERATED_TESTS.read_text()
    diff = "".join(
        difflib.unified_diff(
            committed.splitlines(keepends=True), fresh.splitlines(keepends=True), n=1
        )
    )
    assert committed == fresh, f"{GENERATED_TESTS} is stale: {REGENERATE}.\n{diff[:4000]}"


def test_the_generated_tests_check_every_recording_rule() -> None:
    assert exprs_tested_in(GENERATED_TESTS) == set(records())


RECORDING_RULES = "../rules/streamkpi-kpis.yml"
ALERT_RULES = "../alerts/streamkpi-alerts.yml"


def test_there_are_hand_written_and_generated_test_files() -> None:
    # why: a test file that loads nothing, or the wrong rules, passes for nothing
    assert {p.name: load(p)["rule_files"] for p in TEST_FILES} == {
        "streamkpi-alerts-cases.yml": [RECORDING_RULES, ALERT_RULES],
        "streamkpi-alerts-drift-cases.yml": [RECORDING_RULES, ALERT_RULES],
        "streamkpi-alerts-drift.generated.yml": [ALERT_RULES],
        "streamkpi-alerts.generated.yml": [ALERT_RULES],
        "streamkpi-kpis-cases.yml": [RECORDING_RULES],
        "streamkpi-kpis.generated.yml": [RECORDING_RULES],
    }


def test_promtool_test_rules_passes() -> None:
    result = promtool("test", "rules", *(str(p.relative_to(DEPLOY)) for p in TEST_FILES))
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    assert result.stdout.count("SUCCESS") == len(TEST_FILES), result.stdout


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # why: without the filler, a label set with purchases but no returning ones has no
        # sample (repeat customer rate and average order value)
        (
            ' or 0 * sum by (campaign, channel) (streamkpi_purchases{window="5m"})',
            "",
        ),
        # why: without `> 0`, a zero denominator gives NaN or +Inf
        (
            " > 0)\n    - record: overall:streamkpi_cpa:ratio1h",
            ")\n    - record: overall:streamkpi_cpa:ratio1h",
        ),
        # why: averaging ratios instead of dividing sums
        (
            '/ (sum by (channel) (streamkpi_emails_delivered{window="24h"}) > 0)',
            '/ (avg by (channel) (streamkpi_emails_delivered{window="24h"}) > 0)',
        ),
        # why: a rule reading the wrong window
        ('sum(streamkpi_revenue{window="1h"})', 'sum(streamkpi_revenue{window="24h"})'),
    ],
)
def test_the_promtool_tests_catch_a_broken_rule(tmp_path: Path, old: str, new: str) -> None:
    shutil.copytree(DEPLOY, tmp_path / "prometheus")
    broken = tmp_path / "prometheus" / RULE_FILE.relative_to(DEPLOY)
    text = broken.read_text()
    assert old in text
    broken.write_text(text.replace(old, new, 1))
    recording_tests = [p for p in TEST_FILES if p.name.startswith("streamkpi-kpis")]
    result = promtool(
        "test",
        "rules",
        *(str(p.relative_to(DEPLOY)) for p in recording_tests),
        cwd=tmp_path / "prometheus",
    )
    assert result.returncode == 1, result.stdout
    assert "FAILED" in result.stdout + result.stderr


def test_every_ratio_kpi_is_tested_with_a_missing_numerator_and_a_zero_denominator() -> None:
    cases = load(GENERATED_TESTS)["tests"]
    for k in KPIS:
        if not k.denominator:
            continue
        overall = {
            t["expr"]: t["exp_samples"]
            for case in cases
            for t in case["promql_expr_test"]
            if t["expr"].startswith(f"overall:streamkpi_{k.name}:")
        }
        by_case = [
            [t["exp_samples"] for t in case["promql_expr_test"] if t["expr"] in overall]
            for case in cases
        ]
        missing_numerator = -1 if k.name == "roi" else 0
        # why: one case has only the denominator (value 0, ROI -1) at the overall level ...
        assert any(
            samples and all(len(s) == 1 and s[0]["value"] == missing_numerator for s in samples)
            for samples in by_case
        ), k.name
        # ... and one has every series at 0: no sample at all
        assert any(samples and all(s == [] for s in samples) for samples in by_case), k.name
        if k.labels.value == "campaign_channel":
            cc = next(
                t["exp_samples"]
                for t in cases[0]["promql_expr_test"]
                if t["expr"] == f"campaign_channel:streamkpi_{k.name}:ratio5m"
            )
            labels = [s["labels"] for s in cc]
            assert any(f'campaign="{denominator_only_campaign(k)}"' in x for x in labels), k.name
            assert not any('campaign="all-zero"' in x for x in labels), k.name


def series(*rows: tuple[str, dict[str, str], str, float]) -> Series:
    return {
        (name, tuple(sorted(labels.items())), worker, "5m"): value
        for name, labels, worker, value in rows
    }


SPRING_PAID = {"campaign": "spring", "channel": "paid"}
SUMMER_PAID = {"campaign": "summer", "channel": "paid"}


@pytest.mark.parametrize(
    ("kpi_name", "rows", "rule", "expected"),
    [
        # why: two workers add up before dividing (15 / (15 + 25))
        (
            "bounce_rate",
            [
                ("engaged_sessions", SPRING_PAID, "a", 18),
                ("engaged_sessions", SPRING_PAID, "b", 7),
                ("bounced_sessions", SPRING_PAID, "a", 12),
                ("bounced_sessions", SPRING_PAID, "b", 3),
            ],
            "campaign_channel:streamkpi_bounce_rate:ratio5m",
            {'campaign="spring",channel="paid"': 0.375},
        ),
        # why: a missing numerator is 0 where the denominator exists
        (
            "conversion_rate",
            [("unconverted_sessions", SPRING_PAID, "a", 20)],
            "channel:streamkpi_conversion_rate:ratio5m",
            {'channel="paid"': 0.0},
        ),
        # why: a zero or absent denominator gives no sample
        (
            "deliverability",
            [
                ("emails_delivered", SPRING_PAID, "a", 0),
                ("emails_bounced", SPRING_PAID, "b", 0),
                ("emails_sent", SUMMER_PAID, "a", 4),  # sent is not the denominator
            ],
            "campaign_channel:streamkpi_deliverability:ratio5m",
            {},
        ),
        # why: ROI without revenue is -1; across campaigns the sums divide
        (
            "roi",
            [
                ("ad_spend", SPRING_PAID, "a", 50),
                ("ad_spend", SUMMER_PAID, "b", 50),
                ("revenue", SUMMER_PAID, "a", 150),
            ],
            "channel:streamkpi_roi:ratio5m",
            {'channel="paid"': 0.5},
        ),
        # why: NPS without detractors, scaled by 100
        (
            "nps",
            [("nps_responses", SPRING_PAID, "a", 4), ("nps_promoters", SPRING_PAID, "b", 3)],
            "overall:streamkpi_nps:ratio5m",
            {"": 75.0},
        ),
    ],
)
def test_the_generators_oracle_is_plain_arithmetic(
    kpi_name: str,
    rows: list[tuple[str, dict[str, str], str, float]],
    rule: str,
    expected: dict[str, float],
) -> None:
    samples = expected_samples(["5m"], series(*rows), [kpi(kpi_name)], [])
    assert samples[rule] == expected


def test_shapes_the_spec_allows_but_does_not_use_yet_pass_promtool(tmp_path: Path) -> None:
    # why: Kpi takes tuples of components and a scale; a future KPI must not need new PromQL
    extra = [
        Kpi(
            "refund_share",
            Category.ecommerce,
            Unit.ratio,
            Direction.neutral,
            "x",
            ("refunds", "returning_purchases"),
            ("purchases", "carts_created"),
            scale=0.5,
        ),
        Kpi(
            "net_revenue",
            Category.ecommerce,
            Unit.currency,
            Direction.up,
            "x",
            ("revenue",),
            subtract=("refunded_revenue",),
        ),
    ]
    kpis = [*KPIS, *extra]
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "rules" / "streamkpi-kpis.yml").write_text(render_rule_file(["5m", "1h"], kpis))
    (tmp_path / "tests" / "t.yml").write_text(render_promtool_tests(["5m", "1h"], kpis))
    result = promtool("test", "rules", "tests/t.yml", cwd=tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
