"""``streamkpi dashboards``: write or check the generated Grafana files of grafana/."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from streamkpi.alerts.config import kpi_thresholds, load_alert_config
from streamkpi.config import ConfigError, load_settings
from streamkpi.dashboards.build import GRAFANA_DIR, generated_files
from streamkpi.generated import alerts_option, check_option, write_or_check

__all__ = ["dashboards", "main"]

EXIT_STALE = 1
EXIT_USAGE = 2  # bad configuration, as in the main CLI


@click.group(name="dashboards", context_settings={"help_option_names": ["-h", "--help"]})
def dashboards() -> None:
    """Grafana dashboards generated from the KPI spec."""


@dashboards.command(short_help="Write (or --check) the dashboards and Grafana provisioning.")
@check_option
@click.option(
    "--dir",
    "grafana_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=GRAFANA_DIR,
    show_default="grafana/ of this checkout",
    help="The grafana directory to write or check.",
)
@alerts_option("Alert config whose thresholds colour the stat panels")
@click.pass_context
def generate(ctx: click.Context, check: bool, grafana_dir: Path, alerts_file: Path | None) -> None:
    """Generate the Grafana dashboards from streamkpi/kpis/spec.py.

    Five dashboards (overview, campaigns, e-mail, e-commerce, pipeline health) in
    dashboards/*.json, plus the datasource and dashboard provisioning files. The window
    choices follow the `windows` setting, money the `reporting_currency`, and the stat panels
    colours the alert thresholds of the alert config (--alerts). The files are
    committed: run this after changing the spec or those settings, and commit the result.
    """
    config_file = ctx.obj.get("config_file") if isinstance(ctx.obj, dict) else None
    try:
        settings = load_settings(config_file)
        thresholds = kpi_thresholds(load_alert_config(alerts_file))
    except ConfigError as exc:
        click.echo(f"streamkpi: error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    files = generated_files(settings.windows, settings.reporting_currency, thresholds)
    stale = write_or_check({grafana_dir / k: v for k, v in files.items()}, check=check)
    if stale:
        names = ", ".join(str(p) for p in stale)
        click.echo(
            f"streamkpi: error: {names} differ from the spec; run `streamkpi dashboards "
            "generate` and commit the result",
            err=True,
        )
        sys.exit(EXIT_STALE)


def main() -> None:
    """Write the generated files (``python -m streamkpi.dashboards [--check]``)."""
    generate(prog_name="python -m streamkpi.dashboards")
