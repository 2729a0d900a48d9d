"""`streamkpi rules generate [--check]`: writes the generated files, or fails with a diff."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _rules_helpers import DEPLOY, REPO, RULE_FILE
from click.testing import CliRunner, Result

from streamkpi.rules.cli import GENERATED, rules

CLEAN_ENV = {"STREAMKPI_WINDOWS": None, "STREAMKPI_CONFIG_FILE": None}


@pytest.fixture
def deploy_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "prometheus"
    shutil.copytree(DEPLOY, copy)
    return copy


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
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
    for relative in GENERATED:
        (deploy_copy / relative).unlink()
    assert invoke("generate", "--check", "--dir", str(deploy_copy)).exit_code == 1
    result = invoke("generate", "--dir", str(deploy_copy))
    assert result.exit_code == 0, result.output
    for relative in GENERATED:
        assert (deploy_copy / relative).read_text() == (DEPLOY / relative).read_text()
    assert invoke("generate", "--check", "--dir", str(deploy_copy)).exit_code == 0


def test_windows_come_from_the_settings(deploy_copy: Path) -> None:
    result = invoke("generate", "--dir", str(deploy_copy), env={"STREAMKPI_WINDOWS": "10m,7d"})
    assert result.exit_code == 0, result.output
    text = (deploy_copy / RULE_FILE.relative_to(DEPLOY)).read_text()
    assert "overall:streamkpi_roas:ratio7d" in text
    assert ":ratio5m" not in text


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
