"""The alert config: the shipped default, and one clear line per mistake, naming its key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from streamkpi.alerts.config import (
    Windows,
    check_windows,
    kpi_thresholds,
    load_alert_config,
    with_pending_time,
)
from streamkpi.alerts.rules import _shown, build_alert_rules, render_alert_file, render_value
from streamkpi.config import ConfigError
from streamkpi.kpis.config import EngineConfig
from streamkpi.kpis.spec import Unit

DEFAULT = Path(__file__).resolve().parents[3] / "streamkpi" / "alerts" / "default.yml"


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "alerts.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def default_data() -> dict[str, object]:
    data: dict[str, object] = yaml.safe_load(DEFAULT.read_text())
    return data


def test_the_shipped_defaults_say_what_the_issue_asks() -> None:
    config = load_alert_config()
    assert config.kpis["deliverability"].lower == 0.95
    assert config.kpis["deliverability"].severity == "critical"
    assert config.kpis["bounce_rate"].upper == 0.70
    assert config.kpis["cart_abandonment_rate"].upper == 0.85
    drift = config.kpis["conversion_rate"].drift
    assert drift is not None
    assert (drift.drop, drift.offset) == (0.30, "1w")
    assert config.campaigns["black_friday"]["cpa"].upper == 250


def test_kpi_thresholds_for_dashboards() -> None:
    thresholds = kpi_thresholds()
    assert thresholds["deliverability"] == (0.95, None)
    assert thresholds["bounce_rate"] == (None, 0.70)
    assert thresholds["cpa"] == (None, 150)
    assert "conversion_rate" not in thresholds  # drift only
    assert "revenue" not in thresholds  # a component, not a KPI


@pytest.mark.parametrize(
    ("change", "line"),
    [
        # why: a wrong type names the full path of the key
        (
            lambda d: d["kpis"]["deliverability"].update(lower="high"),
            "invalid alert setting 'kpis.deliverability.lower' in {file}: Input should be a "
            "valid number, unable to parse string as a number",
        ),
        # why: a misspelt key is refused, not ignored
        (
            lambda d: d["kpis"]["bounce_rate"].update(uper=0.8),
            "invalid alert setting 'kpis.bounce_rate.uper' in {file}: Extra inputs are not "
            "permitted",
        ),
        # why: a KPI name that is not in the spec
        (
            lambda d: d["kpis"].update(conversion={"lower": 0.1}),
            "invalid alert setting 'kpis.conversion' in {file}: not a KPI or component of "
            "streamkpi/kpis/spec.py",
        ),
        # why: an override of a bound the KPI does not have
        (
            lambda d: d["campaigns"]["black_friday"].update(cpa={"lower": 5}),
            "invalid alert setting 'campaigns.black_friday.cpa.lower' in {file}: kpis.cpa has "
            "no lower bound",
        ),
        # why: per-campaign settings for an alert that is not per campaign
        (
            lambda d: d["campaigns"]["black_friday"].update(nps={"enabled": False}),
            "invalid alert setting 'campaigns.black_friday.nps' in {file}: the nps alerts are "
            "not per campaign",
        ),
        # why: a duration Prometheus would not parse
        (
            lambda d: d["kpis"]["deliverability"].update({"for": "10 minutes"}),
            "invalid alert setting 'kpis.deliverability.for' in {file}: '10 minutes' is not a "
            "duration like 30s, 5m, 1h, 24h or 7d",
        ),
        # why: windows the wrong way round
        (
            lambda d: d.update(windows={"short": "1h", "long": "5m"}),
            "invalid alert setting 'windows' in {file}: short window 1h must be shorter than "
            "long 5m",
        ),
        # why: an entry that alerts on nothing
        (
            lambda d: d["kpis"].update(roi={"min_volume": 5}),
            "invalid alert setting 'kpis.roi' in {file}: give lower, upper or drift (or remove "
            "the entry)",
        ),
    ],
)
def test_a_mistake_is_one_line_naming_its_key(tmp_path: Path, change: object, line: str) -> None:
    data = default_data()
    change(data)  # type: ignore[operator]
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as raised:
        load_alert_config(path)
    assert str(raised.value) == line.format(file=path)


def test_two_mistakes_are_two_lines(tmp_path: Path) -> None:
    data = default_data()
    data["kpis"]["deliverability"]["lower"] = "x"  # type: ignore[index]
    data["kpis"]["cpa"]["severity"] = "page"  # type: ignore[index]
    with pytest.raises(ConfigError) as raised:
        load_alert_config(write(tmp_path, data))
    lines = str(raised.value).splitlines()
    assert sorted(line.split("'")[1] for line in lines) == [
        "kpis.cpa.severity",
        "kpis.deliverability.lower",
    ]


def test_a_file_that_is_not_yaml_or_missing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("kpis: [\n")
    with pytest.raises(ConfigError, match="is not YAML"):
        load_alert_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_alert_config(tmp_path / "missing.yml")


def test_alert_windows_must_be_recorded() -> None:
    config = load_alert_config()
    check_windows(config, ("5m", "1h", "24h"))
    with pytest.raises(ConfigError) as raised:
        check_windows(config, ("5m", "1h"))  # NPS reads 24h
    assert str(raised.value) == (
        "invalid alert setting 'kpis.nps.windows.long': 24h is not one of the recorded "
        "windows (5m, 1h; setting 'windows')"
    )


def test_top_level_overrides_replace_keys() -> None:
    config = load_alert_config(None, windows={"short": "10s", "long": "30s"})
    assert (config.windows.short, config.windows.long) == ("10s", "30s")


def test_with_pending_time_changes_every_for_and_nothing_else() -> None:
    shipped = load_alert_config()
    fast = with_pending_time(shipped, "45s")
    rules = render_alert_file(fast)
    fors = re.findall(r"^\s+for: (\S+)$", rules, flags=re.MULTILINE)
    assert fors
    assert set(fors) == {"45s"}
    # Same alerts, same expressions: only the for lines differ, and the detection times
    # that add `for` to the KPI's detection delay.
    strip = re.compile(r"^\s+(for|detection_time): .+\n", flags=re.MULTILINE)
    assert strip.sub("", rules) == strip.sub("", render_alert_file(shipped))
    times = {r.alert: r.annotations.get("detection_time") for r in build_alert_rules(fast)}
    assert times["StreamKPIDeliverabilityLow"] == (
        "at the earliest 45 s after the change (for 45s; deliverability has no detection delay)"
    )
    # bounce rate: 1800 s session gap + 300 s lateness, then 45 s
    assert times["StreamKPIBounceRateHigh"].startswith(
        "at the earliest 35 min 45 s after the change: 35 min until bounce rate shows it"
    )
    assert shipped.kpis["deliverability"].for_ == "10m"  # the original is untouched
    with pytest.raises(ValueError, match="duration"):
        with_pending_time(shipped, "soon")


def test_with_pending_time_for_some_kpis_leaves_the_others() -> None:
    shipped = load_alert_config()
    fast = with_pending_time(shipped, "1m", kpis={"deliverability"}, pipeline=False)
    assert fast.kpis["deliverability"].for_ == "1m"
    for name, entry in fast.kpis.items():
        if name != "deliverability":
            assert entry == shipped.kpis[name], name
    assert fast.pipeline == shipped.pipeline
    assert fast.campaigns == shipped.campaigns  # the overrides are for CPA only


def test_a_kpi_window_shorter_than_its_detection_delay_is_refused_with_one_line() -> None:
    shipped = load_alert_config()
    entry = shipped.kpis["cart_abandonment_rate"].model_copy(
        update={"windows": Windows(short="5m", long="30m")}
    )
    config = shipped.model_copy(update={"kpis": {**shipped.kpis, "cart_abandonment_rate": entry}})
    with pytest.raises(ConfigError) as raised:
        build_alert_rules(config, EngineConfig(), "my.yml")
    assert str(raised.value) == (
        "invalid alert setting 'kpis.cart_abandonment_rate.windows.long' in my.yml: the long "
        "window 30m of the cart_abandonment_rate alerts is shorter than the detection delay of "
        "cart_abandonment_rate, 35 min (settings abandon_after_s=1800 + allowed_lateness_s=300);"
        " use a longer window or shorter settings"
    )
    # Shorter settings fit: 1200 + 300 s = 25 min, within the 30m window; then for 15m.
    rules = build_alert_rules(config, EngineConfig(abandon_after_s=1200))
    (rule,) = [r for r in rules if r.alert == "StreamKPICartAbandonmentRateHigh"]
    assert rule.annotations["detection_time"].startswith(
        "at the earliest 40 min after the change: 25 min"
    )


def test_the_volume_guard_defaults_to_the_kpis_population() -> None:
    rules = {r.alert: r for r in build_alert_rules(load_alert_config())}
    # Not the first denominator component (bounced sessions, delivered e-mails...).
    assert rules["StreamKPIBounceRateHigh"].volume_record == (
        "campaign_channel:streamkpi_sessions:sum5m"
    )
    assert rules["StreamKPILandingBounceRateHigh"].volume_record == (
        "page:streamkpi_landing_sessions:sum5m"
    )
    assert rules["StreamKPIDeliverabilityLow"].volume_record == (
        "campaign_channel:streamkpi_emails_sent:sum5m"
    )
    assert rules["StreamKPICartAbandonmentRateHigh"].volume_record == (
        "campaign_channel:streamkpi_carts_created:sum5m"
    )
    assert rules["StreamKPIConversionRateDrop"].volume_record == (
        "overall:streamkpi_sessions:sum5m"
    )
    # A `volume:` of the entry still wins (revenue guards on purchases).
    assert rules["StreamKPIRevenueDrop"].volume_record == "overall:streamkpi_purchases:sum1h"


@pytest.mark.parametrize(
    ("unit", "value", "template", "shown"),
    [
        # why: ROI may leave 0..1: a percentage either way
        (Unit.percent, 1.5, "{{ $value | humanizePercentage }}", "150%"),
        (Unit.percent, -0.2, "{{ $value | humanizePercentage }}", "-20%"),
        # why: ROAS is a factor, read as 2.1x
        (Unit.multiple, 2.1, '{{ $value | printf "%.2f" }}x', "2.1x"),
        (Unit.ratio, 0.95, "{{ $value | humanizePercentage }}", "95%"),
    ],
)
def test_percent_and_multiple_render_as_people_read_them(
    unit: Unit, value: float, template: str, shown: str
) -> None:
    assert render_value(unit) == template
    assert _shown(unit, value) == shown


def test_a_roas_alert_reads_in_multiples() -> None:
    rules = {r.alert: r for r in build_alert_rules(load_alert_config())}
    roas = rules["StreamKPIROASLow"]
    assert roas.annotations["summary"] == "ROAS below 1x"
    assert (
        '{{ $value | printf "%.2f" }}x over the last 5m, below 1x'
        in (roas.annotations["description"])
    )
