"""`streamkpi rules generate [--check]`: writes the generated files, or fails with a diff."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _rules_helpers import DEPLOY, REPO, RULE_FILE
from click.testing import CliRunner, Result

from streamkpi.rules.cli import GENERATED, GRAFANA_DIR, GRAFANA_FILE, rules

CLEAN_ENV = {
    "STREAMKPI_WINDOWS": None,
    "STREAMKPI_CONFIG_FILE": None,
    "STREAMKPI_ALERTS_FILE": None,
}


@pytest.fixture
def deploy_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "prometheus"
    shutil.copytree(DEPLOY, copy)
    shutil.copytree(GRAFANA_DIR, tmp_path / "grafana")
    return copy


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    if "--dir" in args:  # a copy: its Grafana files are next to it
        grafana = Path(args[args.index("--dir") + 1]).parent / "grafana"
        args = (*args, "--grafana-dir", str(grafana))
    return CliRunner().invoke(rules, list(args), env={**CLEAN_ENV, **(env or {})})


def test_check_passes_on_the_committed_files() -> None:
    result = invoke("generate", "--check")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "up to date" in result.stderr


def test_check_fails_with_a_diff_and_a_hint_when_a_file_is_stale(deploy_copy: Path) -> None:
    rule_file = deploy_copy / RULE_FILE.relative_to(DEPLOY)
    rule_file.write_text(rule_file.read_text().replace("ratio5m", "ratio5min", 1))
    result = invoke("generate", "--check", "--dir", str(deploy_copy))
    assert result.exit_code == 1
    assert "-    - record: campaign_channel:streamkpi_conversion_rate:ratio5min" in result.stdout
    assert "+    - record: campaign_channel:streamkpi_conversion_rate:ratio5m" in result.stdout
    assert "run `streamkpi rules generate`" in result.stderr
    assert "ratio5min" in rule_file.read_text()  # --check writes nothing


def test_generate_writes_missing_and_stale_files_then_check_passes(deploy_copy: Path) -> None:
    grafana = deploy_copy.parent / "grafana"
    for relative in GENERATED:
        (deploy_copy / relative).unlink()
    (grafana / GRAFANA_FILE).unlink()
    assert invoke("generate", "--check", "--dir", str(deploy_copy)).exit_code == 1
    result = invoke("generate", "--dir", str(deploy_copy))
    assert result.exit_code == 0, result.output
    for relative in GENERATED:
        assert (deploy_copy / relative).read_text() == (DEPLOY / relative).read_text()
    assert (grafana / GRAFANA_FILE).read_text() == (GRAFANA_DIR / GRAFANA_FILE).read_text()
    assert invoke("generate", "--check", "--dir", str(deploy_copy)).exit_code == 0


def test_check_fails_when_the_alert_config_changes(deploy_copy: Path, tmp_path: Path) -> None:
    # why: the committed alerts must be the shipped config's; another config is another file
    config = tmp_path / "alerts.yml"
    default = (REPO / "streamkpi" / "alerts" / "default.yml").read_text()
    config.write_text(default.replace("lower: 0.95", "lower: 0.9"))
    result = invoke("generate", "--check", "--dir", str(deploy_copy), "--alerts", str(config))
    assert result.exit_code == 1
    assert "+        campaign_channel:streamkpi_deliverability:ratio5m < 0.9\n" in result.stdout
    grafana_diff = "+          campaign_channel:streamkpi_deliverability:ratio5m < 0.9\n"
    assert grafana_diff in result.stdout
    assert "+- name: 'StreamKPIDeliverabilityLow: both windows beyond 0.9," in result.stdout


def test_an_invalid_alert_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "alerts.yml"
    default = (REPO / "streamkpi" / "alerts" / "default.yml").read_text()
    config.write_text(default.replace("lower: 0.95", "lower: high"))
    result = invoke("generate", "--check", "--alerts", str(config))
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "streamkpi: error: invalid alert setting 'kpis.deliverability.lower' in "
    )


def test_alert_windows_must_be_recorded_windows() -> None:
    result = invoke("generate", "--check", env={"STREAMKPI_WINDOWS": "5m,24h"})
    assert result.exit_code == 2
    assert "invalid alert setting 'windows.long': 1h is not one of the recorded windows" in (
        result.stderr
    )


def test_windows_come_from_the_settings(deploy_copy: Path) -> None:
    windows = {"STREAMKPI_WINDOWS": "5m,10m,1h,24h,7d"}  # the alerts read 5m, 1h and 24h
    result = invoke("generate", "--dir", str(deploy_copy), env=windows)
    assert result.exit_code == 0, result.output
    text = (deploy_copy / RULE_FILE.relative_to(DEPLOY)).read_text()
    assert "overall:streamkpi_roas:ratio7d" in text
    assert "overall:streamkpi_roas:ratio10m" in text


def test_invalid_settings_exit_2_with_one_line() -> None:
    result = invoke("generate", "--check", env={"STREAMKPI_WINDOWS": "5m,300s"})
    assert result.exit_code == 2
    assert result.stderr.startswith("streamkpi: error: invalid setting 'windows'")


def test_python_dash_m_runs_the_group() -> None:
    env = {"PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "streamkpi.rules", "generate", "--check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_a_long_window_shorter_than_a_detection_delay_exits_2_naming_key_kpi_and_settings() -> None:
    # A 1 h session gap: bounce rate's delay is 3600 + 300 s = 65 min, over the 1h window.
    result = invoke("generate", "--check", env={"STREAMKPI_SESSION_GAP_S": "3600"})
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "streamkpi: error: invalid alert setting 'windows.long' in "
        "streamkpi/alerts/default.yml: the long window 1h of the bounce_rate alerts is shorter "
        "than the detection delay of bounce_rate, 1 h 5 min (settings session_gap_s=3600 + "
        "allowed_lateness_s=300); use a longer window or shorter settings"
    )
    # Every KPI whose delay comes from the session gap, in the file's order; nothing else.
    assert [line.split(" alerts ")[0].rsplit(" ", 1)[1] for line in lines] == [
        "bounce_rate",
        "landing_bounce_rate",
        "conversion_rate",
    ]


def test_detection_times_come_from_the_settings(deploy_copy: Path) -> None:
    # A 20 min session gap: 1200 + 300 s = 25 min, then bounce rate's for: 15m.
    result = invoke("generate", "--dir", str(deploy_copy), env={"STREAMKPI_SESSION_GAP_S": "1200"})
    assert result.exit_code == 0, result.output
    text = (deploy_copy / "alerts" / "streamkpi-alerts.yml").read_text()
    assert (
        "40 min after the change: 25 min until bounce rate shows it (detection delay: "
        "session_gap_s=1200 + allowed_lateness_s=300), then for 15m"
    ) in text
    grafana = (deploy_copy.parent / "grafana" / GRAFANA_FILE).read_text()
    assert "25 min until bounce rate shows it" in grafana
