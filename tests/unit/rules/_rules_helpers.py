"""Paths and the promtool runner shared by the rule tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy" / "prometheus"
RULE_FILE = DEPLOY / "rules" / "streamkpi-kpis.yml"
ALERT_FILE = DEPLOY / "alerts" / "streamkpi-alerts.yml"
GENERATED_TESTS = DEPLOY / "tests" / "streamkpi-kpis.generated.yml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus.yml"
README = REPO / "README.md"
REGENERATE = "run `streamkpi rules generate` (or `python -m streamkpi.rules generate`) and commit"


def promtool(*args: str, cwd: Path = DEPLOY) -> subprocess.CompletedProcess[str]:
    """Run the real promtool; fail (never skip) when it is not installed."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool not found on PATH: install Debian's prometheus package "
            "(`apt-get update && apt-get install prometheus`, as .ci/run does)"
        )
    return subprocess.run(
        [path, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def records(path: Path = RULE_FILE) -> dict[str, str]:
    """Return a rule file's recording rules: record name -> expression."""
    data = yaml.safe_load(path.read_text())
    return {rule["record"]: rule["expr"] for group in data["groups"] for rule in group["rules"]}


def alerts(path: Path = ALERT_FILE) -> list[dict[str, Any]]:
    """Return a rule file's alerting rules, in file order."""
    data = yaml.safe_load(path.read_text())
    return [rule for group in data["groups"] for rule in group["rules"] if "alert" in rule]
