"""The alert config: thresholds, drift and pipeline-health settings, validated by pydantic.

One YAML file (the packaged ``default.yml`` unless ``--alerts FILE`` names another) holds
every number the alert rules use; ``streamkpi rules generate`` renders the Prometheus alert
rules, their promtool tests and the Grafana alert provisioning from it. README "Alerts"
documents every key; ``default.yml`` says why each default is what it is.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from streamkpi.config import ConfigError, parse_duration_s
from streamkpi.dashboards.ids import DEFAULT_GRAFANA_URL
from streamkpi.kpis.config import EngineConfig
from streamkpi.kpis.spec import COMPONENTS, KPIS, Labels, detection_delay_s

__all__ = [
    "DEFAULT_FILE",
    "TOPICS",
    "AlertConfig",
    "CampaignOverride",
    "DeadLetters",
    "Drift",
    "EventRatio",
    "KpiAlerts",
    "Level",
    "NoEvents",
    "Pipeline",
    "Severity",
    "Windows",
    "check_detection_delays",
    "check_windows",
    "delay_origin",
    "human_duration",
    "kpi_thresholds",
    "levels_of",
    "load_alert_config",
    "with_pending_time",
]

DEFAULT_FILE = "default.yml"  # packaged next to this module

# The logical topics of the `topic` label of streamkpi_events_total.
TOPICS = ("pageviews", "emails", "orders", "adspend", "surveys")

Severity = Literal["critical", "warning", "info"]
Level = Literal["campaign_channel", "channel", "overall", "page"]
Topic = Literal["pageviews", "emails", "orders", "adspend", "surveys"]

_CAMPAIGN = re.compile(r"^[A-Za-z0-9_.-]+$")


def _duration(text: str) -> str:
    parse_duration_s(text)
    return text


# A Prometheus duration such as 30s, 5m, 1h, 1d or 1w, kept as written.
Duration = Annotated[str, AfterValidator(_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Windows(_Model):
    """The short and the long window that must both breach (recording-rule windows)."""

    short: Duration = "5m"
    long: Duration = "1h"

    @model_validator(mode="after")
    def _ordered(self) -> Windows:
        if parse_duration_s(self.short) >= parse_duration_s(self.long):
            raise ValueError(f"short window {self.short} must be shorter than long {self.long}")
        return self


class Drift(_Model):
    """Fire when both windows are ``drop`` below the same windows ``offset`` earlier."""

    drop: float = Field(gt=0, lt=1)
    offset: Duration = "1w"
    severity: Severity = "warning"
    for_: Duration = Field(default="30m", alias="for")
    # Default: the KPI entry's min_volume. Guards now and in the baseline (see README).
    min_volume: float | None = Field(default=None, gt=0)


class KpiAlerts(_Model):
    """The alerts of one KPI (or component): threshold bounds and/or drift."""

    lower: float | None = None
    upper: float | None = None
    severity: Severity = "warning"
    for_: Duration = Field(default="10m", alias="for")
    # At least this much of the volume component in the short window (so: in both).
    min_volume: float = Field(default=100, gt=0)
    # The component guarded (default: the KPI's population, Kpi.volume; a sum guards itself).
    volume: str | None = None
    # Default: campaign_channel (page for landing-page KPIs).
    level: Level | None = None
    windows: Windows | None = None  # default: the file's windows
    drift: Drift | None = None

    @model_validator(mode="after")
    def _something_to_alert_on(self) -> KpiAlerts:
        if self.lower is None and self.upper is None and self.drift is None:
            raise ValueError("give lower, upper or drift (or remove the entry)")
        if self.lower is not None and self.upper is not None and self.lower >= self.upper:
            raise ValueError(f"lower {self.lower} must be below upper {self.upper}")
        return self


class CampaignOverride(_Model):
    """A campaign's own threshold settings for one KPI; unset fields inherit the KPI's."""

    enabled: bool = True
    lower: float | None = None
    upper: float | None = None
    severity: Severity | None = None
    for_: Duration | None = Field(default=None, alias="for")
    min_volume: float | None = Field(default=None, gt=0)


class NoEvents(_Model):
    """No record of a topic consumed by any worker for ``after``, then ``for``."""

    topics: tuple[Topic, ...] = ("pageviews", "orders")
    after: Duration = "5m"
    for_: Duration = Field(default="1m", alias="for")
    severity: Severity = "critical"


class EventRatio(_Model):
    """A share of a topic's records with one outcome above ``max_ratio`` in both windows."""

    max_ratio: float = Field(gt=0, lt=1)
    min_events: int = Field(default=100, ge=1)  # records of the topic in the short window
    for_: Duration = Field(default="10m", alias="for")
    severity: Severity = "warning"


class ConsumerLag(_Model):
    """At least ``min_lag`` records behind on a topic, and growing in both windows."""

    min_lag: int = Field(default=10_000, ge=1)
    for_: Duration = Field(default="15m", alias="for")
    severity: Severity = "warning"


class WorkerDown(_Model):
    """A scraped worker answering no scrape (``up == 0``)."""

    for_: Duration = Field(default="2m", alias="for")
    severity: Severity = "critical"


class DeadLetters(_Model):
    """Dead letters of a topic arriving faster than ``max_per_s`` in both windows."""

    max_per_s: float = Field(default=1.0, gt=0)
    for_: Duration = Field(default="10m", alias="for")
    severity: Severity = "warning"


class Pipeline(_Model):
    """Pipeline-health alerts (any duration works: these read raw counters, not records)."""

    job: str = Field(default="streamkpi", pattern=r"^[A-Za-z0-9_.:-]+$")
    windows: Windows = Windows(short="5m", long="30m")
    no_events: NoEvents = NoEvents()
    invalid_events: EventRatio = EventRatio(max_ratio=0.05)
    late_events: EventRatio = EventRatio(max_ratio=0.02)
    consumer_lag: ConsumerLag = ConsumerLag()
    worker_down: WorkerDown = WorkerDown()
    dead_letters: DeadLetters = DeadLetters()


class AlertConfig(_Model):
    """Every setting of the generated alerts (see README "Alerts" and default.yml)."""

    runbook_url: str = Field(pattern=r"^https?://[^#\s]+$")
    grafana_url: str = Field(default=DEFAULT_GRAFANA_URL, pattern=r"^https?://\S+$")
    windows: Windows = Windows()
    kpis: dict[str, KpiAlerts]
    campaigns: dict[str, dict[str, CampaignOverride]] = {}
    pipeline: Pipeline = Pipeline()

    @model_validator(mode="after")
    def _consistent(self) -> AlertConfig:
        problems = _problems(self)
        if problems:
            raise _Problems(problems)
        return self


class _Problems(ValueError):
    """Several problems, each with its own path (turned into one line each)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{p}: {m}" for p, m in problems))
        self.problems = problems


_KPIS = {k.name: k for k in KPIS}
_COMPONENTS = {c.name: c for c in COMPONENTS}


def labels_of(name: str) -> Labels:
    """Return the label set of a KPI or component name."""
    return _KPIS[name].labels if name in _KPIS else _COMPONENTS[name].labels


def levels_of(name: str) -> tuple[str, ...]:
    """Return the aggregation levels a KPI or component is recorded at, finest first."""
    if labels_of(name) is Labels.page:
        return ("page", "overall")
    return ("campaign_channel", "channel", "overall")


def default_level(name: str) -> str:
    """Return the level alerts use when the config names none."""
    return levels_of(name)[0]


def _problems(config: AlertConfig) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for name, entry in config.kpis.items():
        where = f"kpis.{name}"
        if name not in _KPIS and name not in _COMPONENTS:
            problems.append((where, "not a KPI or component of streamkpi/kpis/spec.py"))
            continue
        if entry.level is not None and entry.level not in levels_of(name):
            problems.append(
                (f"{where}.level", f"{name} is recorded at {', '.join(levels_of(name))} only")
            )
        if entry.volume is not None:
            if entry.volume not in _COMPONENTS:
                problems.append((f"{where}.volume", f"{entry.volume!r} is not a component"))
            elif _COMPONENTS[entry.volume].labels is not labels_of(name):
                problems.append((f"{where}.volume", f"{entry.volume} has other labels than {name}"))
    for campaign, overrides in config.campaigns.items():
        if not _CAMPAIGN.match(campaign):
            problems.append((f"campaigns.{campaign}", "a campaign name is [A-Za-z0-9_.-]+"))
        for name, override in overrides.items():
            where = f"campaigns.{campaign}.{name}"
            found = config.kpis.get(name)
            if found is None:
                problems.append((where, f"kpis has no entry {name!r} to override"))
                continue
            entry = found
            if (entry.level or default_level(name)) != "campaign_channel":
                problems.append((where, f"the {name} alerts are not per campaign"))
            for bound in ("lower", "upper"):
                if getattr(override, bound) is not None and getattr(entry, bound) is None:
                    problems.append((f"{where}.{bound}", f"kpis.{name} has no {bound} bound"))
            if entry.lower is None and entry.upper is None and override.enabled:
                problems.append((where, f"kpis.{name} has no threshold to override"))
    return problems


def check_windows(config: AlertConfig, windows: tuple[str, ...]) -> None:
    """Raise ConfigError unless every KPI alert window is a recorded window."""
    problems = []
    pairs = [("windows", config.windows)] + [
        (f"kpis.{n}.windows", e.windows) for n, e in config.kpis.items() if e.windows
    ]
    for where, pair in pairs:
        for field in ("short", "long"):
            value = getattr(pair, field)
            if value not in windows:
                problems.append(
                    f"invalid alert setting '{where}.{field}': {value} is not one of the "
                    f"recorded windows ({', '.join(windows)}; setting 'windows')"
                )
    if problems:
        raise ConfigError("\n".join(problems))


def human_duration(seconds: int) -> str:
    """Return ``seconds`` as a person reads it: ``35 min``, ``1 h 5 min``, ``90 d``, ``0 s``."""
    parts = []
    rest = seconds
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count} {unit}")
    return " ".join(parts) or "0 s"


def delay_origin(name: str, engine: EngineConfig) -> str:
    """Return where a KPI's detection delay comes from: ``session_gap_s=1800 + ...``."""
    fields = _KPIS[name].delay if name in _KPIS else ()
    return " + ".join(f"{field}={int(getattr(engine, field))}" for field in fields)


def check_detection_delays(
    config: AlertConfig, engine: EngineConfig, source: str = "the alert config"
) -> None:
    """Raise ConfigError for a KPI alert whose long window is shorter than the KPI's delay.

    A window shorter than the detection delay (how long after a change in behaviour the
    KPI's value fully shows it, e.g. session gap + allowed lateness for bounce rate) cannot
    have seen the change when it is judged: the alert would never fire in time, or be
    measured against a partial population. ``engine`` holds the settings in use.
    """
    problems = []
    for name, entry in config.kpis.items():
        if name not in _KPIS:
            continue
        delay_s = detection_delay_s(_KPIS[name], engine)
        windows = entry.windows or config.windows
        if parse_duration_s(windows.long) < delay_s:
            key = f"kpis.{name}.windows.long" if entry.windows else "windows.long"
            problems.append(
                f"invalid alert setting '{key}' in {source}: the long window {windows.long} "
                f"of the {name} alerts is shorter than the detection delay of {name}, "
                f"{human_duration(delay_s)} (settings {delay_origin(name, engine)}); "
                "use a longer window or shorter settings"
            )
    if problems:
        raise ConfigError("\n".join(problems))


def _format(exc: ValidationError, source: str) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        problems = error.get("ctx", {}).get("error")
        if isinstance(problems, _Problems):
            lines += [f"invalid alert setting '{p}' in {source}: {m}" for p, m in problems.problems]
            continue
        lines.append(f"invalid alert setting '{loc or 'alerts'}' in {source}: {message}")
    return "\n".join(lines)


def _read(path: Path | None) -> tuple[Any, str]:
    if path is None:
        text = resources.files("streamkpi.alerts").joinpath(DEFAULT_FILE).read_text("utf-8")
        return yaml.safe_load(text), f"streamkpi/alerts/{DEFAULT_FILE}"
    if not path.is_file():
        raise ConfigError(f"alert config file {str(path)!r} does not exist")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")), str(path)
    except yaml.YAMLError as exc:
        raise ConfigError(f"alert config file {str(path)!r} is not YAML: {exc}") from None


def load_alert_config(path: Path | None = None, **overrides: Any) -> AlertConfig:
    """Load and validate an alert config (the packaged default when ``path`` is None).

    ``overrides`` replace top-level keys after reading the file (tests render the same
    config with short windows this way). Raise ConfigError, one line per problem naming the
    key's path, when the file is invalid.
    """
    data, source = _read(path)
    if not isinstance(data, dict):
        raise ConfigError(f"invalid alert config {source}: expected a mapping of settings")
    try:
        return AlertConfig.model_validate({**data, **overrides})
    except ValidationError as exc:
        raise ConfigError(_format(exc, source)) from None


def with_pending_time(
    config: AlertConfig,
    duration: str,
    *,
    kpis: Collection[str] | None = None,
    pipeline: bool = True,
) -> AlertConfig:
    """Return ``config`` with alerts' ``for`` set to ``duration`` (e.g. ``1m``).

    For showing alerts quickly (``streamkpi demo --alert-for 1m``): what breaches and when
    stays as configured, only how long a breach must last before it fires changes. Only
    the alerts of ``kpis`` (default: every KPI) and, with ``pipeline``, the pipeline's.
    """
    parse_duration_s(duration)  # ValueError for a malformed duration
    chosen = set(config.kpis) if kpis is None else set(kpis)

    def faster(entry: KpiAlerts) -> KpiAlerts:
        drift = entry.drift
        return entry.model_copy(
            update={
                "for_": duration,
                "drift": None if drift is None else drift.model_copy(update={"for_": duration}),
            }
        )

    new_kpis = {
        name: faster(entry) if name in chosen else entry for name, entry in config.kpis.items()
    }
    campaigns = {
        campaign: {
            name: o
            if o.for_ is None or name not in chosen
            else o.model_copy(update={"for_": duration})
            for name, o in overrides.items()
        }
        for campaign, overrides in config.campaigns.items()
    }
    health = config.pipeline
    if pipeline:
        # Every pipeline alert's settings (the parts that have a `for`).
        update = {
            part: value.model_copy(update={"for_": duration})
            for part, value in health
            if isinstance(value, BaseModel) and "for_" in type(value).model_fields
        }
        health = health.model_copy(update=update)
    return config.model_copy(update={"kpis": new_kpis, "campaigns": campaigns, "pipeline": health})


def kpi_thresholds(
    config: AlertConfig | None = None,
) -> dict[str, tuple[float | None, float | None]]:
    """Return each KPI's (lower, upper) alert threshold of ``config`` (default: the shipped one).

    For dashboards (stat-panel colours); campaign overrides are left out. A KPI without a
    threshold alert is absent.
    """
    chosen = config if config is not None else load_alert_config()
    return {
        name: (entry.lower, entry.upper)
        for name, entry in chosen.kpis.items()
        if name in _KPIS and (entry.lower is not None or entry.upper is not None)
    }
