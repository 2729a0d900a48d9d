"""``streamkpi rules``: write or check the generated Prometheus files of deploy/prometheus."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable
from pathlib import Path

import click

from streamkpi.config import ConfigError, load_settings
from streamkpi.rules.promtool_tests import render_promtool_tests
from streamkpi.rules.recording import render_rule_file

__all__ = ["DEPLOY_DIR", "GENERATED", "RULE_FILE", "TEST_FILE", "generated_files", "rules"]

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULE_FILE = Path("rules/streamkpi-kpis.yml")
TEST_FILE = Path("tests/streamkpi-kpis.generated.yml")
GENERATED = (RULE_FILE, TEST_FILE)  # relative to deploy/prometheus

EXIT_STALE = 1
EXIT_USAGE = 2  # bad configuration, as in the main CLI


def generated_files(windows: Iterable[str]) -> dict[Path, str]:
    """Return every generated file of deploy/prometheus (relative path -> text)."""
    checked = tuple(windows)
    return {RULE_FILE: render_rule_file(checked), TEST_FILE: render_promtool_tests(checked)}


def _diff(path: Path, old: str | None, new: str) -> str:
    lines = difflib.unified_diff(
        [] if old is None else old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"{path} (committed)" if old is not None else "/dev/null",
        tofile=f"{path} (generated)",
    )
    return "".join(lines)


@click.group(name="rules", context_settings={"help_option_names": ["-h", "--help"]})
def rules() -> None:
    """Prometheus recording rules generated from the KPI spec."""


@rules.command(short_help="Write (or --check) the rule file and its promtool tests.")
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 and print a diff if a committed file differs from the spec.",
)
@click.option(
    "--dir",
    "deploy_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEPLOY_DIR,
    show_default="deploy/prometheus of this checkout",
    help="The deploy/prometheus directory to write or check.",
)
@click.pass_context
def generate(ctx: click.Context, check: bool, deploy_dir: Path) -> None:
    """Generate the recording rules and their promtool tests from streamkpi/kpis/spec.py.

    One rule per KPI, window (the `windows` setting, default 5m,1h,24h) and aggregation
    level, plus the component sums, in rules/streamkpi-kpis.yml; a promtool test of every
    rule in tests/streamkpi-kpis.generated.yml. Both files are committed: run this after
    changing the spec or the windows, and commit the result.
    """
    config_file = ctx.obj.get("config_file") if isinstance(ctx.obj, dict) else None
    try:
        windows = load_settings(config_file).windows
    except ConfigError as exc:
        click.echo(f"streamkpi: error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    stale: list[Path] = []
    for relative, text in generated_files(windows).items():
        path = deploy_dir / relative
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        if old == text:
            click.echo(f"streamkpi: {path} is up to date", err=True)
            continue
        if check:
            stale.append(path)
            click.echo(_diff(path, old, text), nl=False)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        click.echo(f"streamkpi: wrote {path}", err=True)
    if stale:
        names = ", ".join(str(p) for p in stale)
        click.echo(
            f"streamkpi: error: {names} differ from the spec; run `streamkpi rules generate` "
            "and commit the result",
            err=True,
        )
        sys.exit(EXIT_STALE)
