"""Prometheus alert rules built from the alert config, the KPI spec and the recording rules.

KPI alerts read the recording rules (``<level>:streamkpi_<kpi>:<op><window>``), so a
threshold alert is three series of one level matched one-to-one::

      <level>:streamkpi_deliverability:ratio5m < 0.95      # short window breaches
    and
      <level>:streamkpi_deliverability:ratio1h < 0.95      # long window too
    and
      <level>:streamkpi_emails_sent:sum5m >= 200           # volume guard

A label set with an empty denominator has no recorded ratio, hence no alert. A drift alert
compares each window with itself ``offset`` earlier and guards the volume now and then.
Pipeline alerts read the workers' counters directly. Every alert carries ``severity``, a
static ``summary``, a templated ``description``, ``runbook_url`` and ``dashboard_url``;
KPI alerts add ``kpi`` and ``topics`` (the input topics, for Alertmanager's inhibition).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from streamkpi.alerts.config import (
    TOPICS,
    AlertConfig,
    KpiAlerts,
    Windows,
    check_detection_delays,
    default_level,
    delay_origin,
    human_duration,
)
from streamkpi.config import parse_duration_s
from streamkpi.dashboards.ids import Dashboard, PipelinePanel, dashboard_url, kpi_panel_id
from streamkpi.kpis.buckets import Family
from streamkpi.kpis.config import EngineConfig
from streamkpi.kpis.email import EMAILS
from streamkpi.kpis.orders import ORDERS
from streamkpi.kpis.sessions import LANDING, PAGEVIEWS
from streamkpi.kpis.spec import COMPONENTS, KPIS, Unit, detection_delay_s
from streamkpi.kpis.stateless import ADSPEND, SURVEYS
from streamkpi.rules.recording import dump_yaml, record_name, wrap_comment

__all__ = [
    "COMPONENT_TOPICS",
    "AlertRule",
    "alert_name",
    "build_alert_rules",
    "build_groups",
    "metric_topics",
    "render_alert_file",
    "render_value",
]

# The input topic each component is counted from: read off the engine's bucket families
# (a component counted by two families, like conversions, comes from both topics).
_FAMILY_TOPICS: tuple[tuple[Family, str], ...] = (
    (PAGEVIEWS, "pageviews"),
    (LANDING, "pageviews"),
    (ORDERS, "orders"),
    (EMAILS, "emails"),
    (ADSPEND, "adspend"),
    (SURVEYS, "surveys"),
)
# Stocks are derived, not counted in buckets: the customers of the orders topic.
_STOCK_TOPICS: dict[str, tuple[str, ...]] = {"active_customers": ("orders",)}


def _component_topics() -> dict[str, tuple[str, ...]]:
    found: dict[str, set[str]] = {}
    for family, topic in _FAMILY_TOPICS:
        for name in family.components:
            found.setdefault(name, set()).add(topic)
    topics = {name: tuple(sorted(t)) for name, t in found.items()} | _STOCK_TOPICS
    missing = {c.name for c in COMPONENTS} - set(topics)
    if missing:
        raise RuntimeError(f"components without an input topic: {sorted(missing)}")
    return topics


COMPONENT_TOPICS: dict[str, tuple[str, ...]] = _component_topics()

_ACRONYMS = {"cpa": "CPA", "nps": "NPS", "roas": "ROAS", "roi": "ROI"}
_KPIS = {k.name: k for k in KPIS}
_COMPONENTS = {c.name: c for c in COMPONENTS}
PREFIX = "StreamKPI"


@dataclass(frozen=True)
class AlertRule:
    """One Prometheus alerting rule, plus what its tests and Grafana's copy need."""

    alert: str
    expr: str
    for_: str
    labels: dict[str, str]
    annotations: dict[str, str]
    group: str
    # For tests and Grafana: what the rule is about.
    kind: str  # threshold_lower, threshold_upper, drift, or the pipeline alert's key
    metric: str | None = None
    level: str | None = None
    campaign: str | None = None  # an override rule's campaign
    excluded: tuple[str, ...] = ()  # campaigns a default rule leaves to their overrides
    threshold: float | None = None
    windows: Windows | None = None
    volume_record: str | None = None
    min_volume: float | None = None
    offset: str | None = None
    dashboard: Dashboard | None = None
    panel_id: int | None = None
    extra: dict[str, float] = field(default_factory=dict)

    def as_prometheus(self) -> dict[str, object]:
        """Return the rule as it appears in a Prometheus rule file."""
        return {
            "alert": self.alert,
            "expr": self.expr,
            "for": self.for_,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
        }


def camel(name: str) -> str:
    """Return ``conversion_rate`` as ``ConversionRate`` (``cpa`` as ``CPA``)."""
    return "".join(_ACRONYMS.get(part, part.capitalize()) for part in name.split("_"))


def alert_name(metric: str, kind: str) -> str:
    """Return the alert name of a KPI alert: StreamKPI<Metric><Low|High|Drop>."""
    suffix = {"threshold_lower": "Low", "threshold_upper": "High", "drift": "Drop"}[kind]
    return f"{PREFIX}{camel(metric)}{suffix}"


def metric_topics(metric: str) -> tuple[str, ...]:
    """Return the input topics a KPI or component is counted from, sorted."""
    names = _KPIS[metric].components if metric in _KPIS else (metric,)
    return tuple(sorted({t for n in names for t in COMPONENT_TOPICS[n]}))


def _topics_label(metric: str) -> str:
    # Commas around each name let Alertmanager match one topic: topics=~".*,emails,.*".
    return "," + ",".join(metric_topics(metric)) + ","


def _plain_sum_kpi(component: str) -> str:
    """Return the record name part of a component's sum (``pageviews`` is ``traffic``)."""
    for k in KPIS:
        if not k.is_ratio and k.numerator == (component,) and not k.subtract and k.scale == 1:
            return k.name
    return component


def _metric_record(metric: str, level: str, window: str) -> str:
    if metric in _KPIS:
        k = _KPIS[metric]
        return record_name(level, metric, "ratio" if k.is_ratio else "sum", window)
    return record_name(level, _plain_sum_kpi(metric), "sum", window)


def _volume_component(metric: str, entry: KpiAlerts) -> str:
    if entry.volume is not None:
        return entry.volume
    if metric in _KPIS:
        return _KPIS[metric].volume  # the KPI's population (sessions for bounce rate)
    return metric


def _unit(metric: str) -> Unit:
    return _KPIS[metric].unit if metric in _KPIS else _COMPONENTS[metric].unit


def _is_ratio(metric: str) -> bool:
    return metric in _KPIS and _KPIS[metric].is_ratio


def render_value(unit: Unit) -> str:
    """Return the template rendering ``$value`` in a description, by unit."""
    return {
        Unit.ratio: "{{ $value | humanizePercentage }}",
        Unit.percent: "{{ $value | humanizePercentage }}",  # ROI: 150%, -20%
        Unit.multiple: '{{ $value | printf "%.2f" }}x',  # ROAS: 2.10x
        Unit.score: '{{ $value | printf "%.1f" }}',
        Unit.currency: '{{ $value | printf "%.2f" }}',
        Unit.number: '{{ $value | printf "%.0f" }}',
    }[unit]


def _num(value: float) -> str:
    """Return a number as PromQL and YAML print it: 0.95, 50, 1e-06."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _shown(unit: Unit, value: float) -> str:
    """Return a threshold as a person reads it: 95%, 50, 1.5x."""
    if unit in (Unit.ratio, Unit.percent):
        return f"{round(value * 100, 6):g}%"
    if unit is Unit.multiple:
        return f"{value:g}x"
    return f"{value:g}"


def _human(name: str) -> str:
    return " ".join(_ACRONYMS.get(part, part) for part in name.split("_"))


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


_SCOPE = {
    "campaign_channel": "campaign {{ $labels.campaign }} (channel {{ $labels.channel }})",
    "channel": "channel {{ $labels.channel }}",
    "overall": "all campaigns",
    "page": "landing page {{ $labels.page }}",
}


def _selector(level: str, campaign: str | None, excluded: Sequence[str]) -> str:
    if level != "campaign_channel":
        return ""
    if campaign is not None:
        return f'{{campaign="{campaign}"}}'
    if excluded:
        pattern = "|".join(c.replace(".", "\\\\.") for c in sorted(excluded))
        return f'{{campaign!~"{pattern}"}}'
    return ""


def _dashboard(metric: str, level: str, base: str) -> tuple[Dashboard, int | None, str]:
    """Return the dashboard, panel and URL of a KPI alert (campaign level: campaigns board)."""
    panel = kpi_panel_id(metric) if metric in _KPIS else None
    variables: dict[str, str] = {}
    board = Dashboard.overview
    if level == "campaign_channel":
        board = Dashboard.campaigns
        variables = {"campaign": "{{ $labels.campaign }}", "channel": "{{ $labels.channel }}"}
    elif level == "channel":
        variables = {"channel": "{{ $labels.channel }}"}
    return board, panel, dashboard_url(board, panel, variables, base=base)


def _detection_time(metric: str, for_: str, engine: EngineConfig) -> str:
    """Return the annotation saying how soon after a change in behaviour the alert can fire.

    A lower bound: a multiwindow alert also waits until its long window crosses the threshold,
    which takes a fraction of that window depending on the size of the change.
    """
    delay_s = detection_delay_s(_KPIS[metric], engine) if metric in _KPIS else 0
    total = human_duration(delay_s + parse_duration_s(for_))
    if not delay_s:
        return (
            f"at the earliest {total} after the change (for {for_}; "
            f"{_human(metric)} has no detection delay)"
        )
    return (
        f"at the earliest {total} after the change: {human_duration(delay_s)} until "
        f"{_human(metric)} shows it "
        f"(detection delay: {delay_origin(metric, engine)}), then for {for_}"
    )


def _runbook(config: AlertConfig, alert: str) -> str:
    return f"{config.runbook_url}#{alert.lower()}"


def _threshold_rules(
    config: AlertConfig, metric: str, entry: KpiAlerts, engine: EngineConfig
) -> list[AlertRule]:
    level = entry.level or default_level(metric)
    windows = entry.windows or config.windows
    volume = _volume_component(metric, entry)
    volume_record = _metric_record(volume, level, windows.short)
    unit = _unit(metric)
    dashboard, panel, url = _dashboard(metric, level, config.grafana_url)
    overrides = {
        campaign: per_kpi[metric]
        for campaign, per_kpi in sorted(config.campaigns.items())
        if metric in per_kpi
    }
    rules: list[AlertRule] = []
    for kind, bound, op, word in (
        ("threshold_lower", "lower", "<", "below"),
        ("threshold_upper", "upper", ">", "above"),
    ):
        default_threshold = getattr(entry, bound)
        if default_threshold is None:
            continue
        alert = alert_name(metric, kind)
        # The default rule, then one per overriding campaign that keeps this alert.
        variants: list[tuple[str | None, float, str, str, float]] = [
            (None, default_threshold, entry.severity, entry.for_, entry.min_volume)
        ]
        for name, override in overrides.items():
            if not override.enabled:
                continue
            variants.append(
                (
                    name,
                    getattr(override, bound)
                    if getattr(override, bound) is not None
                    else default_threshold,
                    override.severity or entry.severity,
                    override.for_ or entry.for_,
                    override.min_volume or entry.min_volume,
                )
            )
        for variant in variants:
            campaign, threshold, severity, for_, min_volume = variant
            excluded = tuple(overrides) if campaign is None else ()
            sel = _selector(level, campaign, excluded)
            short = _metric_record(metric, level, windows.short)
            long = _metric_record(metric, level, windows.long)
            expr = (
                f"{short}{sel} {op} {_num(threshold)}\n"
                f"and\n{long}{sel} {op} {_num(threshold)}\n"
                f"and\n{volume_record}{sel} >= {_num(min_volume)}"
            )
            shown = _shown(unit, threshold)
            human = _human(metric)
            description = (
                f"{_capitalized(_SCOPE[level])}: "
                f"{human} is {render_value(unit)} over the last {windows.short}, {word} "
                f"{shown}, and {word} it over {windows.long} too "
                f"(at least {_num(min_volume)} {_human(volume)} in {windows.short})."
            )
            rules.append(
                AlertRule(
                    alert=alert,
                    expr=expr,
                    for_=for_,
                    labels={
                        "severity": severity,
                        "kpi": metric,
                        "topics": _topics_label(metric),
                        # An override's rule differs from the default one by this label too.
                        **({"campaign": campaign} if campaign else {}),
                    },
                    annotations={
                        "summary": f"{_capitalized(human)} {word} {shown}"
                        + (f" (campaign {campaign})" if campaign else ""),
                        "description": description,
                        "detection_time": _detection_time(metric, for_, engine),
                        "runbook_url": _runbook(config, alert),
                        "dashboard_url": url,
                    },
                    group="streamkpi.alerts.kpis",
                    kind=kind,
                    metric=metric,
                    level=level,
                    campaign=campaign,
                    excluded=excluded,
                    threshold=threshold,
                    windows=windows,
                    volume_record=volume_record,
                    min_volume=min_volume,
                    dashboard=dashboard,
                    panel_id=panel,
                )
            )
    return rules


def _drift_rule(
    config: AlertConfig, metric: str, entry: KpiAlerts, engine: EngineConfig
) -> AlertRule:
    drift = entry.drift
    assert drift is not None
    level = entry.level or default_level(metric)
    windows = entry.windows or config.windows
    volume = _volume_component(metric, entry)
    min_volume = drift.min_volume or entry.min_volume
    factor = _num(round(1 - drift.drop, 10))
    off = drift.offset
    terms = []
    for window in (windows.short, windows.long):
        record = _metric_record(metric, level, window)
        # A sum that vanished (the exporter omits zeros) counts 0 where last week had one.
        now = record if _is_ratio(metric) else f"({record} or 0 * {record} offset {off})"
        terms.append(f"{now} < {factor} * {record} offset {off}")
    if _is_ratio(metric):
        # A ratio over a handful of sessions means nothing, now or a week ago.
        guard = _metric_record(volume, level, windows.short)
        terms.append(f"{guard} >= {_num(min_volume)}")
        terms.append(f"{guard} offset {off} >= {_num(min_volume)}")
        volume_record = guard
        guard_text = (
            f"at least {_num(min_volume)} {_human(volume)} in {windows.short}, now and then"
        )
    else:
        # A sum's volume is what falls: guard the baseline only.
        volume_record = _metric_record(volume, level, windows.long)
        terms.append(f"{volume_record} offset {off} >= {_num(min_volume)}")
        guard_text = f"{_human(volume)} over {windows.long} a week ago at least {_num(min_volume)}"
    alert = alert_name(metric, "drift")
    unit = _unit(metric)
    dashboard, panel, url = _dashboard(metric, level, config.grafana_url)
    human = _human(metric)
    percent = f"{round(drift.drop * 100, 6):g}%"
    description = (
        f"{_capitalized(_SCOPE[level])}: {human} is "
        f"{render_value(unit)} over the last {windows.short}, more than {percent} below the "
        f"same window {off} earlier, and over {windows.long} too ({guard_text})."
    )
    return AlertRule(
        alert=alert,
        expr="\nand\n".join(terms),
        for_=drift.for_,
        labels={"severity": drift.severity, "kpi": metric, "topics": _topics_label(metric)},
        annotations={
            "summary": f"{_capitalized(human)} {percent} below {off} ago",
            "description": description,
            "detection_time": _detection_time(metric, drift.for_, engine),
            "runbook_url": _runbook(config, alert),
            "dashboard_url": url,
        },
        group="streamkpi.alerts.drift",
        kind="drift",
        metric=metric,
        level=level,
        threshold=1 - drift.drop,
        windows=windows,
        volume_record=volume_record,
        min_volume=min_volume,
        offset=off,
        dashboard=dashboard,
        panel_id=panel,
    )


def _pipeline_rules(config: AlertConfig) -> list[AlertRule]:
    p = config.pipeline
    job = f'job="{p.job}"'
    short, long = p.windows.short, p.windows.long
    rules: list[AlertRule] = []

    def add(
        key: str,
        alert: str,
        expr: str,
        for_: str,
        severity: str,
        summary: str,
        description: str,
        panel: PipelinePanel,
        **extra: float,
    ) -> None:
        url = dashboard_url(Dashboard.pipeline, panel.value, base=config.grafana_url)
        rules.append(
            AlertRule(
                alert=alert,
                expr=expr,
                for_=for_,
                labels={"severity": severity},
                annotations={
                    "summary": summary,
                    "description": description,
                    "runbook_url": _runbook(config, alert),
                    "dashboard_url": url,
                },
                group="streamkpi.alerts.pipeline",
                kind=key,
                windows=p.windows,
                dashboard=Dashboard.pipeline,
                panel_id=panel.value,
                extra=dict(extra),
            )
        )

    topics = "|".join(p.no_events.topics)
    add(
        "no_events",
        f"{PREFIX}NoEvents",
        f'sum by (topic) (increase(streamkpi_events_total{{{job},topic=~"{topics}"}}'
        f"[{p.no_events.after}])) == 0",
        p.no_events.for_,
        p.no_events.severity,
        "A topic has had no events",
        f"No {{{{ $labels.topic }}}} record was consumed by any worker for {p.no_events.after}: "
        "the producers stopped, the topic changed, or the consumers are stuck.",
        PipelinePanel.events,
    )
    for key, outcome, settings in (
        ("invalid_events", "invalid", p.invalid_events),
        ("late_events", "late", p.late_events),
    ):
        ratios = [
            "(\n"
            f'  sum by (topic) (rate(streamkpi_events_total{{{job},outcome="{outcome}"}}[{w}]))\n'
            f"  / (sum by (topic) (rate(streamkpi_events_total{{{job}}}[{w}])) > 0)\n"
            f") > {_num(settings.max_ratio)}"
            for w in (short, long)
        ]
        guard = (
            f"sum by (topic) (increase(streamkpi_events_total{{{job}}}[{short}]))"
            f" >= {settings.min_events}"
        )
        shown = _shown(Unit.ratio, settings.max_ratio)
        add(
            key,
            f"{PREFIX}{outcome.capitalize()}EventsHigh",
            "\nand\n".join([*ratios, guard]),
            settings.for_,
            settings.severity,
            f"More than {shown} of a topic's records are {outcome}",
            f"{{{{ $value | humanizePercentage }}}} of the {{{{ $labels.topic }}}} records over "
            f"the last {short} were {outcome} (dead-lettered), above {shown}, and over {long} "
            f"too (at least {settings.min_events} records in {short}).",
            PipelinePanel.dead_letters if outcome == "invalid" else PipelinePanel.event_lag,
            max_ratio=settings.max_ratio,
            min_events=settings.min_events,
        )
    lag = "sum by (topic) (streamkpi_consumer_lag{" + job + "})"
    add(
        "consumer_lag",
        f"{PREFIX}ConsumerLagGrowing",
        f"{lag} >= {p.consumer_lag.min_lag}\n"
        f"and\nderiv(({lag})[{short}:]) > 0\n"
        f"and\nderiv(({lag})[{long}:]) > 0",
        p.consumer_lag.for_,
        p.consumer_lag.severity,
        "Consumer lag is growing",
        f'The workers are {{{{ $value | printf "%.0f" }}}} {{{{ $labels.topic }}}} records '
        f"behind, and the lag grew over the last {short} and {long} "
        f"(alerting from {p.consumer_lag.min_lag} records).",
        PipelinePanel.consumer_lag,
        min_lag=p.consumer_lag.min_lag,
    )
    add(
        "worker_down",
        f"{PREFIX}WorkerDown",
        f"up{{{job}}} == 0",
        p.worker_down.for_,
        p.worker_down.severity,
        "A worker is down",
        "Prometheus cannot scrape the worker {{ $labels.instance }}: until its partitions "
        "move to another worker, their events are not counted and every KPI undercounts.",
        PipelinePanel.workers,
    )
    dl = [
        f"sum by (topic) (rate(streamkpi_dead_letters_total{{{job}}}[{w}])) "
        f"> {_num(p.dead_letters.max_per_s)}"
        for w in (short, long)
    ]
    add(
        "dead_letters",
        f"{PREFIX}DeadLettersGrowing",
        "\nand\n".join(dl),
        p.dead_letters.for_,
        p.dead_letters.severity,
        "Dead letters are piling up",
        "{{ $labels.topic }} records go to the dead-letter topic at "
        '{{ $value | printf "%.2f" }}'
        f"/s over the last {short}, above {_num(p.dead_letters.max_per_s)}/s, and over {long} "
        "too.",
        PipelinePanel.dead_letters,
        max_per_s=p.dead_letters.max_per_s,
    )
    return rules


def build_alert_rules(
    config: AlertConfig, engine: EngineConfig | None = None, source: str = "the alert config"
) -> list[AlertRule]:
    """Return every alert rule of ``config``: KPI thresholds, drift, then pipeline health.

    ``engine`` is the engine config of the settings in use (default: the default settings):
    the KPIs' detection delays come from it. Raise ConfigError (naming ``source``) for a KPI
    alert whose long window is shorter than the KPI's detection delay.
    """
    engine = engine if engine is not None else EngineConfig()
    check_detection_delays(config, engine, source)
    rules: list[AlertRule] = []
    for metric, entry in config.kpis.items():
        rules += _threshold_rules(config, metric, entry, engine)
    for metric, entry in config.kpis.items():
        if entry.drift is not None:
            rules.append(_drift_rule(config, metric, entry, engine))
    rules += _pipeline_rules(config)
    for rule in rules:
        parse_duration_s(rule.for_)
    assert set(TOPICS) >= {t for ts in COMPONENT_TOPICS.values() for t in ts}
    return rules


_GROUP_COMMENTS = {
    "streamkpi.alerts.kpis": (
        "KPI thresholds: the short and the long window beyond the bound, with enough volume "
        "in the short window. A campaign with an override has its own rule; the default rule "
        "leaves it out (campaign!~...)."
    ),
    "streamkpi.alerts.drift": (
        "KPI drift: both windows a share below the same windows a week (offset) earlier, with "
        "enough volume now and then. Sums that vanished count as 0 against last week."
    ),
    "streamkpi.alerts.pipeline": (
        "Pipeline health from the workers' own counters: silence, invalid and late records, "
        "growing consumer lag, a worker down, dead letters piling up."
    ),
}

_HEADER = """\
# Generated by `streamkpi rules generate` from {source} and streamkpi/kpis/spec.py.
# Do not edit: change the alert config and regenerate; a test fails on any diff.
# Runbook: deploy/prometheus/runbook.md (one section per alert). Tests:
# deploy/prometheus/tests/streamkpi-alerts*.yml (promtool test rules).
"""


def build_groups(rules: Sequence[AlertRule]) -> list[dict[str, object]]:
    """Return the Prometheus rule groups of ``rules``, in their order."""
    groups: dict[str, list[dict[str, object]]] = {}
    for rule in rules:
        groups.setdefault(rule.group, []).append(rule.as_prometheus())
    return [{"name": name, "rules": group} for name, group in groups.items()]


def render_alert_file(
    config: AlertConfig,
    source: str = "streamkpi/alerts/default.yml",
    engine: EngineConfig | None = None,
) -> str:
    """Return the Prometheus alert rule file of ``config``: deterministic YAML.

    ``engine``: the engine config of the settings in use (default settings if None).
    """
    groups = build_groups(build_alert_rules(config, engine, source))
    parts = [_HEADER.format(source=source), "groups:\n"]
    for index, group in enumerate(groups):
        if index:
            parts.append("\n")
        comment = _GROUP_COMMENTS.get(str(group["name"]), "")
        parts.extend(f"  # {line}\n" for line in wrap_comment(comment))
        parts.extend(f"  {line}\n" for line in dump_yaml([group]).splitlines())
    return "".join(parts)
