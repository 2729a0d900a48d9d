"""``streamkpi rules``: write or check the generated Prometheus and Grafana alerting files."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

import click

from streamkpi.alerts.config import AlertConfig, check_windows, load_alert_config
from streamkpi.alerts.grafana import render_grafana_alerting
from streamkpi.alerts.promtool_tests import render_alert_tests
from streamkpi.alerts.rules import render_alert_file
from streamkpi.config import ConfigError, load_settings
from streamkpi.generated import alerts_option, check_option, write_or_check
from streamkpi.kpis.config import EngineConfig
from streamkpi.rules.kubernetes import MANIFEST, PROMETHEUS_DIR, write_prometheus_rule
from streamkpi.rules.promtool_tests import render_promtool_tests
from streamkpi.rules.recording import render_rule_file

__all__ = [
    "ALERT_FILE",
    "ALERT_TEST_FILES",
    "DEPLOY_DIR",
    "GENERATED",
    "GRAFANA_DIR",
    "GRAFANA_FILE",
    "RULE_FILE",
    "TEST_FILE",
    "generated_files",
    "grafana_files",
    "rules",
]

_REPO = Path(__file__).resolve().parents[2]
DEPLOY_DIR = _REPO / "deploy" / "prometheus"
GRAFANA_DIR = _REPO / "grafana" / "provisioning" / "alerting"
RULE_FILE = Path("rules/streamkpi-kpis.yml")
TEST_FILE = Path("tests/streamkpi-kpis.generated.yml")
ALERT_FILE = Path("alerts/streamkpi-alerts.yml")
ALERT_TEST_FILES = (
    Path("tests/streamkpi-alerts.generated.yml"),
    Path("tests/streamkpi-alerts-drift.generated.yml"),
)
GENERATED = (RULE_FILE, TEST_FILE, ALERT_FILE, *ALERT_TEST_FILES)  # relative to deploy/prometheus
GRAFANA_FILE = Path("streamkpi-alerts.yml")  # relative to grafana/provisioning/alerting

EXIT_STALE = 1
EXIT_USAGE = 2  # bad configuration, as in the main CLI


def _alerts_source(alerts_file: Path | None) -> str:
    return "streamkpi/alerts/default.yml" if alerts_file is None else alerts_file.name


def generated_files(
    windows: Iterable[str],
    alerts: AlertConfig | None = None,
    alerts_source: str | None = None,
    engine: EngineConfig | None = None,
) -> dict[Path, str]:
    """Return every generated file of deploy/prometheus (relative path -> text).

    ``alerts`` defaults to the shipped alert config; ``alerts_source`` is the name the
    alert file's header gives it; ``engine`` is the engine config of the settings in use
    (default settings if None), whose durations make the KPIs' detection delays.
    """
    checked = tuple(windows)
    config = alerts if alerts is not None else load_alert_config()
    source = alerts_source or _alerts_source(None)
    check_windows(config, checked)
    files = {RULE_FILE: render_rule_file(checked), TEST_FILE: render_promtool_tests(checked)}
    files[ALERT_FILE] = render_alert_file(config, source, engine)
    for name, text in render_alert_tests(config, engine).items():
        files[Path("tests") / name] = text
    return files


def grafana_files(
    alerts: AlertConfig | None = None, engine: EngineConfig | None = None
) -> dict[Path, str]:
    """Return the generated files of grafana/provisioning/alerting (relative path -> text)."""
    config = alerts if alerts is not None else load_alert_config()
    return {GRAFANA_FILE: render_grafana_alerting(config, engine)}


@click.group(name="rules", context_settings={"help_option_names": ["-h", "--help"]})
def rules() -> None:
    """Prometheus rules and alerts generated from the KPI spec and the alert config."""


@rules.command(short_help="Write (or --check) the rules, alerts and their promtool tests.")
@check_option
@click.option(
    "--dir",
    "deploy_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEPLOY_DIR,
    show_default="deploy/prometheus of this checkout",
    help="The deploy/prometheus directory to write or check.",
)
@click.option(
    "--grafana-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=GRAFANA_DIR,
    show_default="grafana/provisioning/alerting of this checkout",
    help="The Grafana alert-provisioning directory to write or check.",
)
@alerts_option("Alert config (thresholds, drift, pipeline health)")
@click.pass_context
def generate(
    ctx: click.Context,
    check: bool,
    deploy_dir: Path,
    grafana_dir: Path,
    alerts_file: Path | None,
) -> None:
    """Generate the rules, alerts and their tests from the KPI spec and the alert config.

    One recording rule per KPI, window (the `windows` setting, default 5m,1h,24h) and
    aggregation level, plus the component sums, in rules/streamkpi-kpis.yml, with a promtool
    test of every rule; the alert rules of the alert config (--alerts) in
    alerts/streamkpi-alerts.yml, with their promtool tests; and the same alerts as Grafana
    alert provisioning. All are committed: run this after changing the spec, the windows or
    the alert config, and commit the result.
    """
    config_file = ctx.obj.get("config_file") if isinstance(ctx.obj, dict) else None
    try:
        settings = load_settings(config_file)
        # The detection delays of the KPIs follow the settings' durations (session gap...).
        engine = EngineConfig.from_settings(settings)
        alerts = load_alert_config(alerts_file)
        generated = generated_files(settings.windows, alerts, _alerts_source(alerts_file), engine)
        files = {deploy_dir / k: v for k, v in generated.items()}
        files.update({grafana_dir / k: v for k, v in grafana_files(alerts, engine).items()})
    except ConfigError as exc:
        click.echo(f"streamkpi: error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    stale = write_or_check(files, check=check)
    # The Kubernetes PrometheusRule wraps the rule files as they are on disk (just written,
    # or with --check the committed ones, which must then be current too).
    if deploy_dir.resolve() == PROMETHEUS_DIR.resolve():
        manifest_diff = write_prometheus_rule(deploy_dir, MANIFEST, check=check)
        if manifest_diff is None:
            click.echo(f"streamkpi: {MANIFEST} is up to date", err=True)
        elif check:
            stale.append(MANIFEST)
            click.echo(manifest_diff, nl=False)
        else:
            click.echo(f"streamkpi: wrote {MANIFEST}", err=True)
    if stale:
        names = ", ".join(str(p) for p in stale)
        click.echo(
            f"streamkpi: error: {names} differ from the spec or the alert config; run "
            "`streamkpi rules generate` "
            "and commit the result",
            err=True,
        )
        sys.exit(EXIT_STALE)
