"""grafana/provisioning/alerting: Grafana's file-provisioning schema, the shared ids."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from streamkpi.alerts.config import load_alert_config
from streamkpi.alerts.rules import build_alert_rules
from streamkpi.dashboards.ids import DATASOURCE_UID, FOLDER, Dashboard
from streamkpi.rules.cli import GRAFANA_DIR, GRAFANA_FILE

PROVISIONING = GRAFANA_DIR / GRAFANA_FILE
DATASOURCES = GRAFANA_DIR.parent / "datasources"


def load() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(PROVISIONING.read_text())
    return data


def grafana_rules() -> list[dict[str, Any]]:
    return [rule for group in load()["groups"] for rule in group["rules"]]


def test_the_file_has_grafanas_provisioning_shape() -> None:
    data = load()
    assert set(data) == {"apiVersion", "groups"}
    assert data["apiVersion"] == 1
    for group in data["groups"]:
        assert set(group) == {"orgId", "name", "folder", "interval", "rules"}
        assert group["orgId"] == 1
        assert group["folder"] == FOLDER
        assert re.fullmatch(r"[0-9]+[smh]", group["interval"])
        for rule in group["rules"]:
            required = {"uid", "title", "condition", "data", "noDataState", "execErrState"}
            assert required | {"for", "labels", "annotations"} <= set(rule), rule["title"]
            assert re.fullmatch(r"[a-z0-9_-]{1,40}", rule["uid"])
            assert rule["noDataState"] in ("Alerting", "NoData", "OK")
            assert rule["execErrState"] in ("Alerting", "Error", "OK")
            assert re.fullmatch(r"[0-9]+[smh]", rule["for"])
            ref_ids = [query["refId"] for query in rule["data"]]
            assert rule["condition"] in ref_ids
            for query in rule["data"]:
                assert set(query) == {"refId", "relativeTimeRange", "datasourceUid", "model"}
                assert set(query["relativeTimeRange"]) == {"from", "to"}
                assert query["model"]["refId"] == query["refId"]
                if query["datasourceUid"] == "__expr__":
                    assert query["model"]["type"] in ("reduce", "math", "threshold")
                else:
                    assert query["datasourceUid"] == DATASOURCE_UID
                    assert query["model"]["expr"]


def test_uids_and_titles_are_unique() -> None:
    rules = grafana_rules()
    assert len({r["uid"] for r in rules}) == len(rules)
    assert len({r["title"] for r in rules}) == len(rules)  # unique per folder in Grafana


def test_the_rules_are_the_prometheus_rules() -> None:
    prometheus = build_alert_rules(load_alert_config())
    grafana = grafana_rules()
    assert len(grafana) == len(prometheus)
    for mine, theirs in zip(prometheus, grafana, strict=True):
        assert theirs["data"][0]["model"]["expr"] == mine.expr
        assert theirs["labels"] == mine.labels
        assert theirs["annotations"]["runbook_url"] == mine.annotations["runbook_url"]
        # Grafana's $value is text; the number is $values.B.Value
        assert "$value |" not in theirs["annotations"]["description"]


def test_rules_link_existing_dashboards() -> None:
    uids = {d.value for d in Dashboard}
    for rule in grafana_rules():
        assert rule["dashboardUid"] in uids
        assert rule["annotations"]["dashboard_url"].split("/d/")[1].startswith(rule["dashboardUid"])


def test_the_datasource_uid_is_the_provisioned_one() -> None:
    # The dashboards' provisioning owns the data source; when it is there, it must agree.
    files = sorted(DATASOURCES.glob("*.y*ml")) if DATASOURCES.is_dir() else []
    provisioned = {
        source.get("uid")
        for path in files
        for source in (yaml.safe_load(Path(path).read_text()) or {}).get("datasources", [])
    }
    if files:
        assert DATASOURCE_UID in provisioned
    assert all(
        q["datasourceUid"] in (DATASOURCE_UID, "__expr__")
        for r in grafana_rules()
        for q in r["data"]
    )
