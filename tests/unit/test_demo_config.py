"""The demo's pure parts: its Prometheus config and the per-campaign rows of the live table."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
import yaml

from streamkpi.alerts.config import load_alert_config
from streamkpi.demo import (
    EXAMPLE_QUERY,
    INCIDENT_KPIS,
    PROMETHEUS_DIR,
    AlertDeliveries,
    campaign_rows,
    incident_alerts,
    prometheus_config,
)
from streamkpi.generator.incidents import IncidentKind, parse_incident
from streamkpi.kpis.spec import KPIS


def test_prometheus_config_scrapes_the_demo_worker_and_alerts_its_alertmanager() -> None:
    base = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config = prometheus_config(base, target="127.0.0.1:7000", alertmanager="127.0.0.1:7001")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["streamkpi"]["static_configs"] == [{"targets": ["127.0.0.1:7000"]}]
    assert config["alerting"] == {
        "alertmanagers": [{"static_configs": [{"targets": ["127.0.0.1:7001"]}]}]
    }
    # The rule globs point into this checkout, and they match the generated rule files.
    assert all(Path(pattern).is_absolute() for pattern in config["rule_files"])
    assert any(list(Path("/").glob(p.lstrip("/"))) for p in config["rule_files"])
    assert config["global"] == base["global"]  # intervals as shipped


def test_prometheus_config_without_alertmanager_has_no_alerting() -> None:
    base = {"alerting": {"alertmanagers": []}, "scrape_configs": [], "rule_files": []}
    config = prometheus_config(base, target="127.0.0.1:7000", alertmanager=None)
    assert "alerting" not in config
    assert config["scrape_configs"] == [
        {"job_name": "streamkpi", "static_configs": [{"targets": ["127.0.0.1:7000"]}]}
    ]


def test_campaign_rows_sum_components_over_channels_then_divide() -> None:
    document = {
        "campaigns": [
            {
                "campaign": "a",
                "channel": "paid",
                "components": {"sessions": 10, "converted_sessions": 1, "unconverted_sessions": 9},
            },
            {
                "campaign": "a",
                "channel": "email",
                "components": {"sessions": 30, "converted_sessions": 9, "unconverted_sessions": 21},
            },
            {
                "campaign": "b",
                "channel": "paid",
                "components": {"sessions": 50, "unconverted_sessions": 50},
            },
        ],
        "overall": {
            "components": {"sessions": 90, "converted_sessions": 10, "unconverted_sessions": 80}
        },
    }
    rows = campaign_rows(document)
    assert [r.campaign for r in rows] == ["b", "a", "all"]  # busiest first, then the total
    a = rows[1]
    assert a.components == {"sessions": 40, "converted_sessions": 10, "unconverted_sessions": 30}
    # (1 + 9) / (10 + 30), not the mean of 10 % and 30 %.
    assert a.kpis["conversion_rate"] == pytest.approx(0.25)
    assert rows[0].kpis["conversion_rate"] == 0  # a missing numerator counts 0
    assert a.kpis["deliverability"] is None  # no e-mails: no value
    assert rows[2].kpis["conversion_rate"] == pytest.approx(10 / 90)


def test_campaign_rows_of_an_empty_document_is_the_empty_total() -> None:
    rows = campaign_rows({"campaigns": [], "overall": {"components": {}}})
    assert [r.campaign for r in rows] == ["all"]
    assert rows[0].kpis["conversion_rate"] is None


def test_alert_deliveries_keep_the_latest_status_per_receiver_and_alert() -> None:
    deliveries = AlertDeliveries()
    webhook = deliveries.start()
    try:
        alert = {"labels": {"alertname": "StreamKPIDeliverabilityLow", "campaign": "c07"}}

        def post(receiver: str, status: str) -> None:
            body = json.dumps({"receiver": receiver, "alerts": [alert | {"status": status}]})
            request = urllib.request.Request(
                webhook, data=body.encode(), headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200

        post("pager", "firing")
        post("chat", "firing")
        assert deliveries.lines() == [
            "chat: FIRING StreamKPIDeliverabilityLow{campaign=c07}",
            "pager: FIRING StreamKPIDeliverabilityLow{campaign=c07}",
        ]
        post("pager", "resolved")
        assert deliveries.lines()[1] == "pager: RESOLVED StreamKPIDeliverabilityLow{campaign=c07}"
        # Not an Alertmanager notification: answered, ignored.
        request = urllib.request.Request(webhook, data=b"not json")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        assert len(deliveries.lines()) == 2
    finally:
        deliveries.stop()


@pytest.mark.parametrize(
    ("specs", "kpis", "pipeline"),
    [
        ((), None, True),  # no incident: every alert
        (("deliverability-drop:campaign=c1",), {"deliverability"}, False),
        (
            ("deliverability-drop", "conversion-drop:campaign=c2"),
            {"deliverability", "conversion_rate", "cart_abandonment_rate", "cpa", "roas"},
            False,
        ),
        (("traffic-stop",), {"traffic"}, True),
    ],
)
def test_alert_for_shortens_the_alerts_the_incidents_aim_at(
    specs: tuple[str, ...], kpis: set[str] | None, pipeline: bool
) -> None:
    assert incident_alerts([parse_incident(spec) for spec in specs]) == (kpis, pipeline)
    shipped = {k.name for k in KPIS}
    assert kpis is None or kpis <= shipped


def test_every_incident_kind_names_the_alerted_kpis_it_moves() -> None:
    configured = set(load_alert_config().kpis)
    for kind in IncidentKind:
        assert set(INCIDENT_KPIS[kind]) <= configured, kind


def test_the_prometheus_link_queries_a_shipped_recording_rule() -> None:
    records = {
        rule["record"]
        for path in (PROMETHEUS_DIR / "rules").glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    }
    assert EXAMPLE_QUERY in records
