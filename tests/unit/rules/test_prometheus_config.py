"""deploy/prometheus/prometheus.yml is valid and scrapes the default worker every 15 s."""

from __future__ import annotations

import yaml
from _rules_helpers import ALERT_FILE, PROMETHEUS_CONFIG, alerts, promtool, records

from streamkpi.config import Settings


def test_promtool_check_config_is_clean() -> None:
    result = promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stdout + result.stderr
    # why: the rule_files globs reach the generated rules and alerts, checked with the config
    assert f"SUCCESS: {len(records())} rules found" in result.stdout
    assert f"Checking {ALERT_FILE}\n  SUCCESS: {len(alerts())} rules found" in result.stdout


def test_config_scrapes_the_default_worker_and_loads_rules_and_alerts() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert config["global"] == {"scrape_interval": "15s", "evaluation_interval": "15s"}
    assert config["rule_files"] == ["rules/*.yml", "alerts/*.yml"]
    (job,) = config["scrape_configs"]
    defaults = Settings.model_fields
    target = f"{defaults['web_host'].default}:{defaults['web_port'].default}"
    assert job["static_configs"] == [{"targets": [target]}]
