"""Alert-can-fire cases: an incident, the alert meant to catch it, and the proof by promtool.

A case replays the same live traffic twice (``replay``), healthy and with the incident
from ``lead_s`` on, and evaluates the alert with the generated rules (``promtool``):

* healthy: the alert is neither pending nor firing at any sample;
* with the incident: not before the incident starts, and firing (on ``scope``'s labels)
  at the *deadline*: incident start + the KPI's detection delay
  (``spec.detection_delay_s`` with the case's engine config) + the alert's long window +
  its ``for`` + two samples. The long window is in the bound because every alert wants
  its long window (1h, NPS 24h) to breach too: after the delay plus that window both
  windows hold nothing but the incident; two samples (2 min) cover the 1-min buckets
  and the evaluation step.

Drift alerts compare with ``offset 1w``: the week before is synthesised from a healthy
run of the same traffic with another seed (another week's visitors), its samples placed
exactly one week before the run's; the steps in between are empty (promtool evaluates
them, quickly: only the alert's own rules are loaded, see ``promtool.rules_for``).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from streamkpi.backtest.promtool import (
    PromtoolResult,
    concat,
    duration,
    input_series,
    rules_for,
    run_promtool,
)
from streamkpi.backtest.replay import Samples, replay
from streamkpi.config import parse_duration_s
from streamkpi.generator.incidents import parse_incident
from streamkpi.generator.live import CAMPAIGNS, Campaign, LiveConfig
from streamkpi.kpis.config import EngineConfig
from streamkpi.kpis.spec import KPIS, detection_delay_s

__all__ = [
    "ENGINE",
    "ORIGIN_S",
    "STEP_S",
    "WEEK_S",
    "AlertCase",
    "CaseResult",
    "check",
    "focused",
]

ORIGIN_S: Final = 1_764_158_400.0  # 2025-11-26T12:00:00Z
STEP_S: Final = 60.0  # one sample and one rule evaluation a minute
WEEK_S: Final = 7 * 86_400
# Shortened timers: sessions end 10 min after their last event, carts are abandoned after
# 10 min, 1 min of lateness; the detection delays are computed with these same values.
ENGINE: Final = EngineConfig(session_gap_s=600, allowed_lateness_s=60, abandon_after_s=600)
_SLACK_S: Final = 2 * STEP_S
_WINDOW: Final = re.compile(r":(?:ratio|sum)(\d+[smhd])\b")


def focused(campaign: str, weight: float = 0.7) -> tuple[Campaign, ...]:
    """Return the live campaigns with ``campaign`` given ``weight`` of the campaign visits.

    The alerts' volume guards are per campaign and channel (200 sessions in 5m for the
    bounce rate): focusing the traffic meets them at a modest total rate.
    """
    rest = sum(c.weight for c in CAMPAIGNS if c.name != campaign)
    return tuple(
        replace(c, weight=weight if c.name == campaign else (1 - weight) * c.weight / rest)
        for c in CAMPAIGNS
    )


@dataclass(frozen=True)
class AlertCase:
    """One alert and the incident that must make it fire.

    ``live`` is the healthy traffic (``incident`` is added for the incident run, ``at``
    = ``lead_s``); ``scope`` the labels the firing alert must carry; samples start
    ``sample_before_s`` before the incident (the engine runs from the start).
    """

    alert: str
    incident: str
    live: LiveConfig
    scope: Mapping[str, str] = field(default_factory=dict)
    lead_s: float = 80 * 60.0
    sample_before_s: float = 20 * 60.0
    engine: EngineConfig = ENGINE
    seed_baseline: int = 2

    @property
    def name(self) -> str:
        """Return ``Alert<-incident``, the case's test id."""
        return f"{self.alert}<-{self.incident}"


@dataclass(frozen=True)
class CaseResult:
    """What a case found; ``passed`` says whether every assertion held."""

    case: AlertCase
    deadline_s: float  # after the incident's start
    result: PromtoolResult
    rule: Mapping[str, Any]

    @property
    def passed(self) -> bool:
        """Return whether promtool's tests all passed."""
        return self.result.passed


def _alert_rule(rules: Mapping[str, Any], alert: str) -> dict[str, Any]:
    alerts = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == alert]
    return dict(alerts[0])


def deadline_s(case: AlertCase, rule: Mapping[str, Any]) -> float:
    """Return when, after the incident's start, the alert must fire at the latest."""
    kpi_name = rule["labels"]["kpi"]
    kpis = {k.name: k for k in KPIS}
    delay = detection_delay_s(kpis[kpi_name], case.engine) if kpi_name in kpis else 0
    longest = max(parse_duration_s(w) for w in _WINDOW.findall(rule["expr"]))
    return delay + longest + parse_duration_s(rule.get("for", "0s")) + _SLACK_S


_RUNS: dict[str, Samples] = {}


def _run(
    live: LiveConfig, engine: EngineConfig, duration_s: float, sample_from_s: float
) -> Samples:
    # Runs are shared by the cases of the same traffic (healthy ones, mostly); the configs
    # hold dicts (unhashable), their repr is the key.
    key = repr((live, engine, duration_s, sample_from_s))
    if key not in _RUNS:
        _RUNS[key] = replay(
            live,
            engine,
            origin_s=ORIGIN_S,
            duration_s=duration_s,
            sample_from_s=sample_from_s,
            step_s=STEP_S,
        )
    return _RUNS[key]


def _absent(expr: str, steps: range, offset_s: float = 0) -> list[dict[str, Any]]:
    return [
        {"expr": expr, "eval_time": duration(offset_s + k * STEP_S), "exp_samples": []}
        for k in steps
    ]


@dataclass(frozen=True)
class _Plan:
    """What both runs of a case share: the alert's rules, its deadline, the sick run."""

    rules: dict[str, Any]
    metrics: frozenset[str]
    rule: dict[str, Any]
    deadline_s: float
    duration_s: float
    sample_from: float
    drift: bool
    offset_s: float
    sick: Samples

    def series(self, case: AlertCase, samples: Samples) -> list[dict[str, str]]:
        """Return the promtool input series of ``samples``; a drift alert's week before too."""
        if not self.drift:
            return input_series(samples, metrics=self.metrics)
        last_week = _run(
            replace(case.live, seed=case.seed_baseline),
            case.engine,
            self.duration_s,
            self.sample_from,
        )
        gap = round(WEEK_S / STEP_S) - samples.steps
        return input_series(concat(last_week, gap, samples), metrics=self.metrics)


def _plan(case: AlertCase) -> _Plan:
    rules, metrics = rules_for(case.alert)
    rule = _alert_rule(rules, case.alert)
    deadline = deadline_s(case, rule)
    # A whole number of samples, running one sample past the deadline.
    duration_s = case.lead_s + deadline + STEP_S
    sample_from = ORIGIN_S + case.lead_s - case.sample_before_s
    incident = parse_incident(f"{case.incident}:at=+{case.lead_s:g}s")
    sick = _run(replace(case.live, incidents=(incident,)), case.engine, duration_s, sample_from)
    drift = "offset 1w" in rule["expr"]
    offset_s = float(WEEK_S) if drift else 0.0
    return _Plan(rules, metrics, rule, deadline, duration_s, sample_from, drift, offset_s, sick)


def _firing(case: AlertCase) -> str:
    return ",".join(
        [f'alertname="{case.alert}"', 'alertstate="firing"']
        + [f'{k}="{v}"' for k, v in sorted(case.scope.items())]
    )


def _promtool(
    rules: Mapping[str, Any], tests: list[dict[str, Any]], workdir: Path | None
) -> PromtoolResult:
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="streamkpi-backtest-") as tmp:
            return run_promtool(Path(tmp), rules, tests)
    return run_promtool(workdir, rules, tests)


def check(case: AlertCase, workdir: Path | None = None) -> CaseResult:
    """Replay ``case`` healthy and with its incident; run promtool on the alert."""
    plan = _plan(case)
    healthy = _run(case.live, case.engine, plan.duration_s, plan.sample_from)
    before = round(case.sample_before_s / STEP_S)  # samples before the incident
    name = case.alert
    tests = [
        {
            "name": f"{case.name}: healthy",
            "interval": "1m",
            "input_series": plan.series(case, healthy),
            "promql_expr_test": _absent(
                f'ALERTS{{alertname="{name}"}}', range(healthy.steps), plan.offset_s
            ),
        },
        {
            "name": f"{case.name}: incident",
            "interval": "1m",
            "input_series": plan.series(case, plan.sick),
            "promql_expr_test": [
                *_absent(f'ALERTS{{alertname="{name}"}}', range(before + 1), plan.offset_s),
                {
                    "expr": f"max(ALERTS{{{_firing(case)}}})",
                    "eval_time": duration(plan.offset_s + case.sample_before_s + plan.deadline_s),
                    "exp_samples": [{"labels": "{}", "value": 1}],
                },
            ],
        },
    ]
    result = _promtool(plan.rules, tests, workdir)
    return CaseResult(case, plan.deadline_s, result, plan.rule)


def first_firing_s(case: AlertCase, workdir: Path | None = None) -> float | None:
    """Return when, after the incident's start, the alert first fires (None: never).

    promtool reports only failures: the incident run is tested for "not firing" at every
    sample, and the earliest failure is the first firing.
    """
    plan = _plan(case)
    tests = [
        {
            "interval": "1m",
            "input_series": plan.series(case, plan.sick),
            "promql_expr_test": _absent(
                f"max(ALERTS{{{_firing(case)}}})", range(plan.sick.steps), plan.offset_s
            ),
        }
    ]
    result = _promtool(plan.rules, tests, workdir)
    times = [_promtool_s(t) for t in result.failure_times()]
    if not times:
        return None
    return min(times) - plan.offset_s - case.sample_before_s


def _promtool_s(text: str) -> float:
    """Return the seconds of a promtool time such as ``1w1d1h1m0s``."""
    units = {"w": WEEK_S, "d": 86_400, "h": 3600, "m": 60, "s": 1}
    return float(sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([wdhms])", text)))


_EMAIL: Final = LiveConfig(
    rate=5, visit_share=0, email_share=1, survey_share=0, warmup_s=0, daily_swing=0
)
# Web traffic, 90 % from campaigns, 70 % of those retargeting_q4 (one source: paid).
_WEB: Final = LiveConfig(
    rate=16,
    visit_share=1,
    email_share=0,
    survey_share=0,
    campaign_share=0.9,
    campaigns=focused("retargeting_q4"),
    warmup_s=0,
    daily_swing=0,
)
# brand_search (ROAS 9, many conversions) is the campaign whose CPA a healthy day keeps
# well below the shipped bound (150). Its CPA is about 11: 20x spend puts it at about 220.
_BRAND: Final = replace(_WEB, rate=10, campaigns=focused("brand_search"))
_SURVEYS: Final = LiveConfig(
    rate=0.2, visit_share=0, email_share=0, survey_share=1, warmup_s=0, daily_swing=0
)
_OVERALL: Final = LiveConfig(
    rate=8, visit_share=1, email_share=0, survey_share=0, warmup_s=0, daily_swing=0
)
_RETARGETING: Final = {"campaign": "retargeting_q4", "channel": "paid"}

# One case per shipped KPI alert (streamkpi/alerts/default.yml).
CASES: Final = (
    AlertCase(
        "StreamKPIDeliverabilityLow",
        "deliverability-drop:campaign=spring_sale:severity=0.5",
        _EMAIL,
        {"campaign": "spring_sale"},
    ),
    AlertCase(
        "StreamKPIBounceRateHigh",
        "landing-broken:campaign=retargeting_q4",
        _WEB,
        _RETARGETING,
    ),
    AlertCase(
        "StreamKPILandingBounceRateHigh",
        "landing-broken:page=/pricing",
        _WEB,
        {"page": "/pricing"},
    ),
    # The default abandon_after (30 min): with ENGINE's 10 min, purchases 10-40 min after
    # the cart count as abandoned and the healthy rate (88 %) sits above the 85 % bound.
    AlertCase(
        "StreamKPICartAbandonmentRateHigh",
        "checkout-broken:campaign=retargeting_q4",
        _WEB,
        _RETARGETING,
        engine=replace(ENGINE, abandon_after_s=1800),
    ),
    AlertCase(
        "StreamKPICPAHigh",
        "ad-overspend:campaign=brand_search:factor=20",
        _BRAND,
        {"campaign": "brand_search", "channel": "paid"},
    ),
    # ROAS is about 3.5 here: 5x spend leaves the noisy 5m value near 1 for the hour's
    # `for`; 10x is the clear case.
    AlertCase(
        "StreamKPIROASLow",
        "ad-overspend:campaign=retargeting_q4:factor=10",
        _WEB,
        _RETARGETING,
    ),
    # NPS reads 1h and 24h: a day of answers first, so the 24h window is at its steady
    # state when the incident starts (surveys only: cheap).
    AlertCase(
        "StreamKPINPSLow",
        "nps-drop:severity=0.5",
        _SURVEYS,
        lead_s=25 * 3600.0,
        sample_before_s=60 * 60.0,
    ),
    AlertCase("StreamKPIConversionRateDrop", "checkout-broken", _OVERALL),
    AlertCase("StreamKPITrafficDrop", "traffic-stop", _OVERALL),
    # Purchases trail their visits by up to 40 min: the revenue windows start steady only
    # after the first 1h40m (an earlier start read 40 % below last week once, by noise).
    AlertCase("StreamKPIRevenueDrop", "checkout-broken", _OVERALL, lead_s=130 * 60.0),
)
