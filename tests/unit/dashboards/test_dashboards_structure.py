"""The committed Grafana dashboards: generated from the spec, well formed, and every query
refers to something Prometheus will have (a recording rule or an exporter metric)."""

from __future__ import annotations

import difflib
import json
import re
import shutil
import subprocess
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import yaml
from _dash_helpers import (
    GRAFANA,
    all_panels,
    committed,
    exporter_metrics,
    metric_names,
    provisioned_datasource_uid,
    records,
    substitute,
    targets,
)

from streamkpi.alerts.config import kpi_thresholds
from streamkpi.config import Settings
from streamkpi.dashboards import build, ids
from streamkpi.dashboards.build import ALERTS_EXPR, build_dashboards, generated_files
from streamkpi.dashboards.ids import DATASOURCE_UID, Dashboard, PipelinePanel, kpi_panel_id
from streamkpi.kpis.spec import KPIS, Category, Direction, Kpi, Unit, component

REGENERATE = "run `streamkpi dashboards generate` and commit"


def test_committed_files_equal_a_fresh_generation(default_settings: Settings) -> None:
    fresh = generated_files(
        default_settings.windows, default_settings.reporting_currency, kpi_thresholds()
    )
    problems = []
    for relative, text in fresh.items():
        path = GRAFANA / relative
        old = path.read_text() if path.is_file() else ""
        if old != text:
            diff = difflib.unified_diff(
                old.splitlines(keepends=True), text.splitlines(keepends=True), n=1
            )
            problems.append(f"{relative}:\n{''.join(diff)[:2000]}")
    assert not problems, f"stale files, {REGENERATE}:\n" + "\n".join(problems)
    # Nothing generated lives beside the generated dashboards.
    on_disk = {p.relative_to(GRAFANA) for p in (GRAFANA / "dashboards").glob("*")}
    assert on_disk == {p for p in fresh if p.parts[0] == "dashboards"}


def test_five_dashboards_with_fixed_uids_tag_and_schema_version() -> None:
    models = committed()
    assert set(models) == {d.value for d in Dashboard}
    for uid, model in models.items():
        assert isinstance(model["schemaVersion"], int), uid
        assert model["schemaVersion"] >= 36, uid  # the datasource-object era
        assert model["tags"] == ["streamkpi"], uid
        assert model["title"].startswith("StreamKPI / "), uid
        assert model["id"] is None, uid  # provisioned: Grafana assigns the numeric id


def test_panel_ids_are_unique_per_dashboard() -> None:
    for uid, model in committed().items():
        panel_ids = [p["id"] for p in all_panels(model)]
        assert all(isinstance(i, int) and i > 0 for i in panel_ids), uid
        repeated = sorted({i for i in panel_ids if panel_ids.count(i) > 1})
        assert not repeated, f"{uid}: panel ids used twice: {repeated}"


def _cells(pos: dict[str, int]) -> set[tuple[int, int]]:
    return {
        (x, y)
        for x in range(pos["x"], pos["x"] + pos["w"])
        for y in range(pos["y"], pos["y"] + pos["h"])
    }


def test_grid_positions_do_not_overlap_rows_and_collapsed_children_included() -> None:
    saw_collapsed = False
    for uid, model in committed().items():
        placed = []
        for panel in all_panels(model):
            pos = panel["gridPos"]
            assert min(pos["w"], pos["h"], pos["x"] + 1) >= 1, (uid, panel["id"])
            assert pos["x"] + pos["w"] <= 24, (uid, panel["id"])
            if panel["type"] == "row":
                assert (pos["x"], pos["w"], pos["h"]) == (0, 24, 1), (uid, panel["id"])
                saw_collapsed |= bool(panel["collapsed"] and panel["panels"])
                if not panel["collapsed"]:
                    assert panel["panels"] == [], "an open row's panels follow it at top level"
            placed.append((panel["id"], _cells(pos)))
        for (a, cells_a), (b, cells_b) in combinations(placed, 2):
            assert not cells_a & cells_b, f"{uid}: panels {a} and {b} overlap"
    assert saw_collapsed, "no collapsed row with children: the check above proved less"


def _datasources(node: Any) -> list[Any]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                found.append(value)
            found.extend(_datasources(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_datasources(item))
    return found


def test_every_datasource_reference_is_the_provisioned_prometheus() -> None:
    uid = provisioned_datasource_uid()
    assert uid == DATASOURCE_UID
    for name, model in committed().items():
        refs = _datasources(model)
        assert refs, name
        for ref in refs:
            assert ref == {"type": "prometheus", "uid": uid}, (name, ref)
        for panel, target in targets(model):
            assert target["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]


def test_provisioning_files() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/streamkpi.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["folder"] == ids.FOLDER
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_every_query_refers_to_a_recording_rule_or_an_exporter_metric() -> None:
    known = set(records()) | exporter_metrics()
    windows = Settings.model_fields["windows"].default
    seen: set[str] = set()
    for uid, model in committed().items():
        for panel, target in targets(model):
            for window in windows:
                names = metric_names(substitute(target["expr"], window))
                assert names, (uid, panel["title"], target["expr"])
                unknown = names - known
                assert not unknown, f"{uid} / {panel['title']}: unknown {sorted(unknown)}"
                seen |= names
    # The records and the exporter metrics the dashboards are about are all shown somewhere.
    for k in KPIS:
        for window in windows:
            assert f"overall:streamkpi_{k.name}:{'ratio' if k.is_ratio else 'sum'}{window}" in seen
    for metric in (
        "streamkpi_events_total",
        "streamkpi_dead_letters_total",
        "streamkpi_event_lag_seconds_bucket",
        "streamkpi_consumer_lag",
        "streamkpi_watermark_delay_seconds",
        "streamkpi_label_overflows_total",
        "streamkpi_owned_partitions",
    ):
        assert metric in seen, metric


def test_the_metric_scanner_finds_names_and_skips_the_rest() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (topic, le) (rate(a_bucket{x=~"y|z"}[1m]))) '
        "/ on (topic) group_left (b) (c:d:e > 0) or vector(1) and bool"
    )
    assert metric_names(expr) == {"a_bucket", "c:d:e"}
    with pytest.raises(AssertionError):
        substitute("foo$unknown", "5m")


_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>[a-zA-Z_]\w*)\)$")


def _record_labels(expr: str) -> set[str]:
    """Return the labels a rule keeps: those of every ``sum by (...)`` in it (all alike)."""
    groupings = {
        frozenset(s.strip() for s in m.split(",")) for m in re.findall(r"sum by \(([^)]*)\)", expr)
    }
    assert len(groupings) <= 1, expr
    return set(groupings.pop()) if groupings else set()


def test_every_variable_query_lists_a_label_of_existing_recording_rules() -> None:
    rules = records()
    checked = 0
    for uid, model in committed().items():
        for variable in model["templating"]["list"]:
            if variable["type"] == "custom":
                assert variable["name"] == "window"
                values = [o["value"] for o in variable["options"]]
                assert values == list(Settings.model_fields["windows"].default), uid
                assert variable["current"]["value"] in values
                continue
            assert variable["type"] == "query", uid
            assert variable["datasource"]["uid"] == DATASOURCE_UID
            query = variable["query"]
            assert variable["definition"] == query
            match = _LABEL_VALUES.match(query)
            assert match, f"{uid}: {query!r} is not label_values(<selector>, <label>)"
            selector, label = match["selector"], match["label"]
            named = re.fullmatch(r'\{__name__=~"([^"]+)"(?:,\s*(\w+)=~"\$(\w+)")?\}', selector)
            if named:
                matching = [r for r in rules if re.fullmatch(named[1], r)]
                if named[2]:
                    # a chained variable filters on an earlier one
                    earlier = [v["name"] for v in model["templating"]["list"]]
                    assert named[3] in earlier[: earlier.index(variable["name"])], query
            else:
                assert re.fullmatch(r"[a-z_:0-9]+", selector), query
                matching = [selector] if selector in rules else []
            assert matching, f"{uid}: {query!r} matches no recording rule"
            for record in matching:
                assert label in _record_labels(rules[record]), (query, record)
            checked += 1
    assert checked >= 5  # campaign + channel (campaigns, e-commerce), campaign (e-mail)


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: apt-get install prometheus (as .ci/run does)")
    return path


def test_every_query_and_annotation_parses_as_promql(tmp_path: Path) -> None:
    # promtool's rule check runs Prometheus's own parser on each expression.
    exprs: list[str] = []
    for model in committed().values():
        raw = [t["expr"] for _, t in targets(model)]
        raw += [a["expr"] for a in model["annotations"]["list"]]
        for window in Settings.model_fields["windows"].default:
            exprs += [substitute(e, window) for e in raw]
            exprs += [
                substitute(e, window, campaign="spring_sale|c07", channel="paid") for e in raw
            ]
    rules = [{"record": f"dashboard_check_{i}", "expr": e} for i, e in enumerate(exprs)]
    path = tmp_path / "dashboard-exprs.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "check", "rules": rules}]}))
    result = subprocess.run(
        [_promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_a_broken_expression_fails_the_promtool_check(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    rule = {"record": "x", "expr": "sum by (campaign (campaign_channel:streamkpi_leads:sum5m)"}
    path.write_text(yaml.safe_dump({"groups": [{"name": "check", "rules": [rule]}]}))
    result = subprocess.run(
        [_promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0


def _panel(model: dict[str, Any], panel_id: int) -> dict[str, Any]:
    (panel,) = [p for p in all_panels(model) if p["id"] == panel_id]
    return panel


def test_kpi_panels_sit_at_the_contract_ids_on_overview_and_campaigns() -> None:
    models = committed()
    for k in KPIS:
        op = "ratio" if k.is_ratio else "sum"
        for uid in (Dashboard.overview, Dashboard.campaigns):
            panel = _panel(models[uid.value], kpi_panel_id(k.name))
            assert panel["type"] == "timeseries", (uid, k.name)
            exprs = " ".join(t["expr"] for t in panel["targets"])
            assert f":streamkpi_{k.name}:{op}$window" in exprs, (uid, k.name)
        campaigns_panel = _panel(models[Dashboard.campaigns.value], kpi_panel_id(k.name))
        if k.labels.value == "campaign_channel":
            expr = campaigns_panel["targets"][0]["expr"]
            assert expr.startswith(f"campaign_channel:streamkpi_{k.name}:{op}$window{{"), expr
            assert 'campaign=~"$campaign"' in expr
            assert 'channel=~"$channel"' in expr


def test_pipeline_panels_sit_at_the_contract_ids() -> None:
    model = committed()[Dashboard.pipeline.value]
    expected = {
        PipelinePanel.events: "streamkpi_events_total",
        PipelinePanel.dead_letters: "streamkpi_dead_letters_total",
        PipelinePanel.event_lag: "streamkpi_event_lag_seconds_bucket",
        PipelinePanel.consumer_lag: "streamkpi_consumer_lag",
        PipelinePanel.watermark_delay: "streamkpi_watermark_delay_seconds",
        PipelinePanel.label_overflows: "streamkpi_label_overflows_total",
        PipelinePanel.workers: "streamkpi_owned_partitions",
    }
    for panel_id, metric in expected.items():
        panel = _panel(model, panel_id.value)
        assert panel["type"] == "timeseries"
        assert any(metric in t["expr"] for t in panel["targets"]), (panel_id, metric)
    events = _panel(model, PipelinePanel.events.value)["targets"][0]["expr"]
    assert "by (topic, outcome)" in events


_UNITS = {Unit.ratio: "percentunit", Unit.currency: "currencyEUR", Unit.number: "short"}


def _kpi_of(panel: dict[str, Any]) -> Kpi | None:
    """Return the KPI a panel shows, by its title ("Bounce rate", "CPA", "Traffic by channel")."""
    for k in KPIS:
        title = k.name.upper() if len(k.name) <= 4 else k.name.replace("_", " ").capitalize()
        if panel["title"] == title or panel["title"].startswith(f"{title} by "):
            return k
    return None


def test_kpi_panels_carry_the_spec_unit_and_definition() -> None:
    checked = 0
    for uid, model in committed().items():
        for panel in all_panels(model):
            assert panel["type"] == "row" or panel["description"], (uid, panel["title"])
            k = _kpi_of(panel)
            if k is None or panel["type"] == "table":
                continue
            # A plain-sum KPI's volume panel may define it by its component (same series).
            definitions = [k.help] + [component(n).help for n in k.numerator if not k.is_ratio]
            assert any(d in panel["description"] for d in definitions), (uid, panel["title"])
            if k.unit in _UNITS:
                assert panel["fieldConfig"]["defaults"]["unit"] == _UNITS[k.unit], (uid, k.name)
            checked += 1
    assert checked >= 3 * len(KPIS)  # a stat and a time series on the overview, one on campaigns


def test_selection_panels_divide_sums_never_average_ratios() -> None:
    model = committed()[Dashboard.campaigns.value]
    roas = next(p for p in all_panels(model) if p["type"] == "stat" and p["title"] == "ROAS")
    expr = roas["targets"][0]["expr"]
    assert ":streamkpi_roas:" not in expr  # the per-pair ratio cannot be added up
    assert expr.count("campaign_channel:streamkpi_revenue:sum$window") == 1
    assert "/ (sum(campaign_channel:streamkpi_ad_spend:sum$window{" in expr
    assert expr.endswith("> 0)")


def test_pipeline_units_seconds_and_rates() -> None:
    model = committed()[Dashboard.pipeline.value]
    assert _panel(model, PipelinePanel.event_lag.value)["fieldConfig"]["defaults"]["unit"] == "s"
    delay = _panel(model, PipelinePanel.watermark_delay.value)
    assert delay["fieldConfig"]["defaults"]["unit"] == "s"
    assert _panel(model, PipelinePanel.events.value)["fieldConfig"]["defaults"]["unit"] == "eps"


def test_every_dashboard_links_the_others_and_annotates_firing_alerts() -> None:
    models = committed()
    for uid, model in models.items():
        (link,) = model["links"]
        assert (link["type"], link["tags"]) == ("dashboards", ["streamkpi"]), uid
        (annotation,) = model["annotations"]["list"]
        assert (
            annotation["expr"]
            == ALERTS_EXPR
            == ('ALERTS{alertstate="firing", alertname=~"StreamKPI.*"}')
        )
        assert annotation["enable"] is True
        for panel in all_panels(model):
            for panel_link in panel.get("links", []):
                match = re.match(r"^/d/([\w-]+)(?:\?viewPanel=(\d+))?", panel_link["url"])
                assert match, panel_link
                assert match[1] in models, panel_link
                if match[2]:
                    assert any(p["id"] == int(match[2]) for p in all_panels(models[match[1]])), (
                        panel_link
                    )


def test_committed_stats_are_coloured_by_the_shipped_alert_thresholds() -> None:
    overview = committed()[Dashboard.overview]
    shipped = kpi_thresholds()
    assert shipped  # the default alert config has threshold alerts
    for name, (lower, upper) in shipped.items():
        # The KPI's stat (id 100 above its time series) and its time series both show them.
        for panel_id in (kpi_panel_id(name) + 100, kpi_panel_id(name)):
            steps = _panel(overview, panel_id)["fieldConfig"]["defaults"]["thresholds"]["steps"]
            values = [step["value"] for step in steps]
            for bound in (lower, upper):
                if bound is not None:
                    assert bound in values, (name, panel_id, values)


def test_thresholds_colour_stat_panels_and_unknown_kpis_are_refused() -> None:
    models = build_dashboards(("5m", "1h"), "EUR", {"deliverability": (0.95, None)})
    overview = models[Dashboard.overview]
    deliverability = next(
        p for p in all_panels(overview) if p["type"] == "stat" and p["title"] == "Deliverability"
    )
    steps = deliverability["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps == [{"color": "red", "value": None}, {"color": "green", "value": 0.95}]
    lines = _panel(overview, kpi_panel_id("deliverability"))["fieldConfig"]["defaults"]
    assert lines["custom"]["thresholdsStyle"]["mode"] == "dashed"
    # Without thresholds: one neutral colour, no lines.
    roas = next(p for p in all_panels(overview) if p["type"] == "stat" and p["title"] == "ROAS")
    assert roas["fieldConfig"]["defaults"]["thresholds"]["steps"] == [
        {"color": "blue", "value": None}
    ]
    both = build_dashboards(("5m",), "EUR", {"bounce_rate": (None, 0.7), "cpa": (1.0, 50.0)})
    stats = {p["title"]: p for p in all_panels(both[Dashboard.overview]) if p["type"] == "stat"}
    assert stats["Bounce rate"]["fieldConfig"]["defaults"]["thresholds"]["steps"] == [
        {"color": "green", "value": None},
        {"color": "red", "value": 0.7},
    ]
    assert stats["CPA"]["fieldConfig"]["defaults"]["thresholds"]["steps"] == [
        {"color": "red", "value": None},
        {"color": "green", "value": 1.0},
        {"color": "red", "value": 50.0},
    ]
    with pytest.raises(ValueError, match="unknown KPIs: no_such_kpi"):
        build_dashboards(("5m",), "EUR", {"no_such_kpi": (0, 1)})


def test_windows_and_currency_come_from_the_arguments() -> None:
    models = build_dashboards(("10m", "7d"), "USD")
    window = models[Dashboard.campaigns]["templating"]["list"][0]
    assert [o["value"] for o in window["options"]] == ["10m", "7d"]
    revenue = next(p for p in all_panels(models[Dashboard.campaigns]) if p["title"] == "Revenue")
    assert revenue["fieldConfig"]["defaults"]["unit"] == "currencyUSD"
    assert "(sum|ratio)7d" in models[Dashboard.campaigns]["templating"]["list"][1]["query"]


def test_a_new_kpi_appears_on_its_dashboards_without_editing_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    new = Kpi(
        "unsubscribe_rate",
        Category.emailing,
        Unit.ratio,
        Direction.down,
        "Unsubscribes / delivered.",
        ("email_unsubscribes",),
        ("emails_delivered",),
    )
    spec = (*KPIS, new)
    monkeypatch.setattr(build, "KPIS", spec)
    monkeypatch.setattr(ids, "_KPI_INDEX", {k.name: i for i, k in enumerate(spec)})
    models = build_dashboards(("5m",), "EUR")
    assert kpi_panel_id("unsubscribe_rate") == 100 + len(KPIS)
    for uid in (Dashboard.overview, Dashboard.campaigns):
        panel = _panel(models[uid], kpi_panel_id("unsubscribe_rate"))
        assert "Unsubscribes / delivered." in panel["description"]
        assert panel["fieldConfig"]["defaults"]["unit"] == "percentunit"
    email = json.dumps(models[Dashboard.email])
    assert "email_unsubscribes:sum$window" in email
    assert "Unsubscribe rate" in email
    assert "Unsubscribe rate" not in json.dumps(models[Dashboard.ecommerce])
