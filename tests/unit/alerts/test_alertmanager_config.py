"""deploy/alertmanager/alertmanager.yml: valid for amtool, routes by severity, inhibits."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from streamkpi.alerts.config import TOPICS
from streamkpi.alerts.routing import with_webhook_receivers
from streamkpi.alerts.rules import COMPONENT_TOPICS

CONFIG = Path(__file__).resolve().parents[3] / "deploy" / "alertmanager" / "alertmanager.yml"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real amtool; fail (never skip) when it is missing."""
    path = shutil.which("amtool")
    if path is None:
        pytest.fail(
            "amtool not found: apt-get install prometheus-alertmanager (as .ci/run does)",
            pytrace=False,
        )
    return subprocess.run([path, *args], capture_output=True, text=True, timeout=60, check=False)


def load() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    return data


def test_amtool_check_config_is_clean() -> None:
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["severity=critical", "alertname=StreamKPIDeliverabilityLow"], "pager,chat"),
        (["severity=warning", "alertname=StreamKPIBounceRateHigh"], "chat"),
        (["severity=info"], "chat"),
        ([], "chat"),  # unlabelled: the default receiver, never dropped
    ],
)
def test_routing_by_severity(labels: list[str], receivers: str) -> None:
    result = amtool("config", "routes", "test", f"--config.file={CONFIG}", *labels)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == receivers


def test_grouping_and_no_secret_in_the_file() -> None:
    config = load()
    assert config["route"]["group_by"] == ["alertname", "campaign"]
    text = CONFIG.read_text()
    assert "hooks.slack.com" not in text
    assert config["global"]["slack_api_url_file"].startswith("/etc/alertmanager/secrets/")
    pager = next(r for r in config["receivers"] if r["name"] == "pager")
    assert pager["pagerduty_configs"][0]["routing_key_file"].startswith("/etc/alertmanager/")


def test_worker_down_and_no_events_inhibit_the_kpi_alerts_of_their_scope() -> None:
    rules = load()["inhibit_rules"]
    assert {
        "source_matchers": ['alertname="StreamKPIWorkerDown"'],
        "target_matchers": ['kpi=~".+"'],
    } in rules
    topics_used = {t for ts in COMPONENT_TOPICS.values() for t in ts}
    assert topics_used == set(TOPICS)
    for topic in TOPICS:
        assert {
            "source_matchers": ['alertname="StreamKPINoEvents"', f'topic="{topic}"'],
            "target_matchers": [f'topics=~".*,{topic},.*"'],
        } in rules, topic


def test_the_webhook_copy_keeps_routing_and_inhibition(tmp_path: Path) -> None:
    shipped = load()
    copy = with_webhook_receivers(shipped, "http://127.0.0.1:9/alerts", group_wait="2s")
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(copy, sort_keys=False))
    result = amtool("check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    # Same receivers by name, each now one webhook that also says when an alert resolves.
    assert [r["name"] for r in copy["receivers"]] == [r["name"] for r in shipped["receivers"]]
    for receiver in copy["receivers"]:
        assert receiver["webhook_configs"] == [
            {"url": "http://127.0.0.1:9/alerts", "send_resolved": True}
        ]
    assert copy["inhibit_rules"] == shipped["inhibit_rules"]
    assert copy["route"]["routes"] == shipped["route"]["routes"]
    assert copy["route"]["group_wait"] == copy["route"]["group_interval"] == "2s"
    routed = amtool("config", "routes", "test", f"--config.file={path}", "severity=critical")
    assert routed.stdout.strip() == "pager,chat"
    assert load() == shipped  # the shipped config itself is untouched
