"""The committed alert rules: names, labels, annotations, links, runbook, and promtool."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from _rules_helpers import ALERT_FILE, DEPLOY, alerts, promtool

from streamkpi.alerts.config import load_alert_config
from streamkpi.alerts.rules import COMPONENT_TOPICS, build_alert_rules
from streamkpi.dashboards.ids import Dashboard, PipelinePanel, kpi_panel_id
from streamkpi.kpis.spec import COMPONENTS

RUNBOOK = DEPLOY / "runbook.md"
ALERT_TESTS = sorted((DEPLOY / "tests").glob("streamkpi-alerts*.yml"))


def github_anchor(heading: str) -> str:
    """GitHub's heading anchor: lower case, spaces to dashes, punctuation dropped."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def test_every_component_has_an_input_topic() -> None:
    assert set(COMPONENT_TOPICS) == {c.name for c in COMPONENTS}


def test_every_configured_kpi_has_its_alerts() -> None:
    config = load_alert_config()
    names = {rule["alert"] for rule in alerts()}
    for kpi, entry in config.kpis.items():
        camel = "".join(
            {"cpa": "CPA", "nps": "NPS", "roas": "ROAS"}.get(p, p.capitalize())
            for p in kpi.split("_")
        )
        if entry.lower is not None:
            assert f"StreamKPI{camel}Low" in names, kpi
        if entry.upper is not None:
            assert f"StreamKPI{camel}High" in names, kpi
        if entry.drift is not None:
            assert f"StreamKPI{camel}Drop" in names, kpi
    pipeline = {
        "StreamKPINoEvents",
        "StreamKPIInvalidEventsHigh",
        "StreamKPILateEventsHigh",
        "StreamKPIConsumerLagGrowing",
        "StreamKPIWorkerDown",
        "StreamKPIDeadLettersGrowing",
    }
    assert pipeline <= names


def test_every_alert_has_severity_and_the_four_annotations() -> None:
    for rule in alerts():
        assert re.fullmatch(r"StreamKPI[A-Z][A-Za-z]+", rule["alert"]), rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        # why: a KPI alert also says how soon it can fire after a change (#11)
        kpi_only = {"detection_time"} if "kpi" in rule["labels"] else set()
        assert set(rule["annotations"]) == {
            "summary",
            "description",
            "runbook_url",
            "dashboard_url",
            *kpi_only,
        }
        assert "{{" not in rule["annotations"]["summary"]  # static
        assert "{{" in rule["annotations"]["description"]  # templated
        if "kpi" in rule["labels"]:
            # why: Alertmanager's no-events inhibition matches one topic in this label
            assert re.fullmatch(r",([a-z]+,)+", rule["labels"]["topics"])


def test_runbook_urls_point_at_runbook_headings() -> None:
    headings = {
        github_anchor(line.removeprefix("## "))
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("## ")
    }
    config = load_alert_config()
    anchors = set()
    for rule in alerts():
        base, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert base == config.runbook_url
        anchors.add(anchor)
    # why: a section per alert, and no section for an alert that no longer exists
    assert anchors == headings


def test_dashboard_urls_use_the_shared_grafana_ids() -> None:
    by_name = {r.alert: r for r in build_alert_rules(load_alert_config())}
    deliverability = by_name["StreamKPIDeliverabilityLow"].annotations["dashboard_url"]
    assert deliverability == (
        f"http://localhost:3000/d/{Dashboard.campaigns.value}?viewPanel="
        f"{kpi_panel_id('deliverability')}&var-campaign={{{{ $labels.campaign }}}}"
        "&var-channel={{ $labels.channel }}"
    )
    traffic = by_name["StreamKPITrafficDrop"].annotations["dashboard_url"]
    assert traffic == f"http://localhost:3000/d/{Dashboard.overview.value}?viewPanel=100"
    down = by_name["StreamKPIWorkerDown"].annotations["dashboard_url"]
    assert down.endswith(f"/d/{Dashboard.pipeline.value}?viewPanel={PipelinePanel.workers.value}")


def test_every_alert_rule_is_tested_by_promtool() -> None:
    tested = set()
    for path in ALERT_TESTS:
        for line in path.read_text().splitlines():
            match = re.match(r"\s+alertname: (\S+)", line)
            if match:
                tested.add(match.group(1))
    assert tested == {rule["alert"] for rule in alerts()}


def test_promtool_passes_on_the_alert_tests() -> None:
    result = promtool("test", "rules", *(str(p.relative_to(DEPLOY)) for p in ALERT_TESTS))
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # why: without the long window a blip alerts
        (
            "and\n        campaign_channel:streamkpi_deliverability:ratio1h < 0.95\n",
            "",
        ),
        # why: without the volume guard a test send of 3 e-mails pages someone
        (
            "\n        and\n        campaign_channel:streamkpi_emails_sent:sum5m >= 200",
            "",
        ),
        # why: the short window read from the long one
        (
            "campaign_channel:streamkpi_bounce_rate:ratio5m{",
            "campaign_channel:streamkpi_bounce_rate:ratio1h{",
        ),
        # why: a `for` that elapses early
        (
            "for: 10m\n      labels:\n        severity: critical",
            "for: 9m\n      labels:\n        severity: critical",
        ),
        # why: the default rule must leave an overriding campaign alone
        ('campaign!~"black_friday"', 'campaign!~"none"'),
        # why: drift compared with the wrong baseline
        (
            "0.7 * overall:streamkpi_conversion_rate:ratio5m offset 1w",
            "0.7 * overall:streamkpi_conversion_rate:ratio5m offset 1d",
        ),
        # why: a pipeline threshold changed by hand
        ("\n        ) > 0.05\n", "\n        ) > 0.5\n"),
    ],
)
def test_the_alert_tests_catch_a_broken_rule(tmp_path: Path, old: str, new: str) -> None:
    shutil.copytree(DEPLOY, tmp_path / "prometheus")
    broken = tmp_path / "prometheus" / ALERT_FILE.relative_to(DEPLOY)
    text = broken.read_text()
    assert old in text
    broken.write_text(text.replace(old, new))
    # The drift cases evaluate all 474 recording rules at 341 steps (a week): ~23 s, 8/9 of
    # this test's time. Only a drift mutation needs them.
    files = [p for p in ALERT_TESTS if "offset" in old or "drift" not in p.name]
    result = promtool(
        "test",
        "rules",
        *(str(p.relative_to(DEPLOY)) for p in files),
        cwd=tmp_path / "prometheus",
    )
    assert result.returncode == 1, result.stdout
    assert "FAILED" in result.stdout + result.stderr
