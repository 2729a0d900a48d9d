"""`streamkpi dashboards generate [--check]`: writes the generated files, or fails with a diff."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _dash_helpers import GRAFANA
from click.testing import CliRunner, Result

from streamkpi.cli import cli

CLEAN_ENV = {
    "STREAMKPI_WINDOWS": None,
    "STREAMKPI_CONFIG_FILE": None,
    "STREAMKPI_REPORTING_CURRENCY": None,
    "STREAMKPI_CURRENCY_RATES": None,
}
OVERVIEW = Path("dashboards/streamkpi-overview.json")


@pytest.fixture
def grafana_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "grafana"
    shutil.copytree(GRAFANA / "dashboards", copy / "dashboards")
    shutil.copytree(GRAFANA / "provisioning", copy / "provisioning")
    return copy


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, ["dashboards", *args], env={**CLEAN_ENV, **(env or {})})


def test_check_passes_on_the_committed_files() -> None:
    result = invoke("generate", "--check")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "streamkpi-campaigns.json is up to date" in result.stderr


def test_check_fails_with_a_diff_and_writes_nothing_when_a_file_is_stale(
    grafana_copy: Path,
) -> None:
    path = grafana_copy / OVERVIEW
    path.write_text(path.read_text().replace("ratio$window", "ratio$windw", 1))
    result = invoke("generate", "--check", "--dir", str(grafana_copy))
    assert result.exit_code == 1
    assert "ratio$windw" in result.stdout
    assert "ratio$window" in result.stdout
    assert "run `streamkpi dashboards generate`" in result.stderr
    assert "ratio$windw" in path.read_text()


def test_generate_writes_missing_and_stale_files_then_check_passes(grafana_copy: Path) -> None:
    (grafana_copy / OVERVIEW).unlink()
    (grafana_copy / "provisioning/datasources/prometheus.yml").write_text("stale\n")
    assert invoke("generate", "--check", "--dir", str(grafana_copy)).exit_code == 1
    result = invoke("generate", "--dir", str(grafana_copy))
    assert result.exit_code == 0, result.output
    for relative in (OVERVIEW, Path("provisioning/datasources/prometheus.yml")):
        assert (grafana_copy / relative).read_text() == (GRAFANA / relative).read_text()
    assert invoke("generate", "--check", "--dir", str(grafana_copy)).exit_code == 0


def test_windows_and_currency_come_from_the_settings(grafana_copy: Path) -> None:
    env = {
        "STREAMKPI_WINDOWS": "10m,2h",
        "STREAMKPI_REPORTING_CURRENCY": "USD",
        "STREAMKPI_CURRENCY_RATES": '{"USD": 1}',
    }
    result = invoke("generate", "--dir", str(grafana_copy), env=env)
    assert result.exit_code == 0, result.output
    text = (grafana_copy / "dashboards/streamkpi-campaigns.json").read_text()
    assert '"currencyUSD"' in text
    assert '"currencyEUR"' not in text
    assert "(sum|ratio)2h" in text
    assert "24h" not in text


def test_a_bad_setting_is_a_usage_error() -> None:
    result = invoke("generate", "--check", env={"STREAMKPI_WINDOWS": "5 minutes"})
    assert result.exit_code == 2
    assert "invalid setting 'windows'" in result.stderr
