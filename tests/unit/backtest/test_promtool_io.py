"""The promtool plumbing of the backtests: series encoding and the copied rules."""

from __future__ import annotations

import yaml

from streamkpi.backtest.promtool import ALERT_FILE, RULE_FILE, input_series, rules_for
from streamkpi.backtest.replay import Samples, series_name


def test_input_series_marks_gaps_and_vanished_series_stale() -> None:
    samples = Samples(0.0, 60.0)
    for values in ({}, {"a": 1.0}, {"a": 2.5}, {}, {}, {"a": 3.0}):
        samples.add(values)
    # absent before it first appears, stale where it vanishes, then absent until back
    assert input_series(samples) == [{"series": "a", "values": "_ 1 2.5 stale _ 3"}]
    assert input_series(samples, offset_steps=3)[0]["values"] == "_x4 1 2.5 stale _ 3"
    assert input_series(samples, metrics=frozenset({"b"})) == []


def test_series_name_is_the_exporters() -> None:
    assert series_name("sessions", "5m", ("spring_sale", "paid")) == (
        'streamkpi_sessions{window="5m",campaign="spring_sale",channel="paid"}'
    )
    assert series_name("landing_sessions", "1h", ("/",)) == (
        'streamkpi_landing_sessions{window="1h",page="/"}'
    )


def test_rules_for_copies_the_alert_and_what_it_reads_verbatim() -> None:
    rules, metrics = rules_for("StreamKPIDeliverabilityLow")
    recorded = {
        r["record"]: r for g in yaml.safe_load(RULE_FILE.read_text())["groups"] for r in g["rules"]
    }
    shipped = [
        r
        for g in yaml.safe_load(ALERT_FILE.read_text())["groups"]
        for r in g["rules"]
        if r.get("alert") == "StreamKPIDeliverabilityLow"
    ]
    copied_records, copied_alerts = rules["groups"][0]["rules"], rules["groups"][1]["rules"]
    assert copied_alerts == shipped
    assert copied_records
    assert all(recorded[r["record"]] == r for r in copied_records)
    names = {r["record"] for r in copied_records}
    assert "campaign_channel:streamkpi_deliverability:ratio5m" in names
    assert "streamkpi_emails_sent" in metrics
    assert not any("traffic" in name for name in names)
