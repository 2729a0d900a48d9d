"""Read the committed dashboards back, and what their queries may refer to."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from streamkpi.exporter.health import HealthCollector
from streamkpi.exporter.kpis import KpiCollector
from streamkpi.exporter.pipeline import PipelineMetrics

REPO = Path(__file__).resolve().parents[3]
GRAFANA = REPO / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
RULE_FILES = sorted((REPO / "deploy" / "prometheus" / "rules").glob("*.yml"))

Json = dict[str, Any]


def committed() -> dict[str, Json]:
    """Return every committed dashboard by uid (parsing each file as JSON)."""
    out = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        model = json.loads(path.read_text())
        out[model["uid"]] = model
    return out


def all_panels(model: Json) -> Iterator[Json]:
    """Yield every panel, rows and the children of collapsed rows included."""
    for panel in model["panels"]:
        yield panel
        yield from panel.get("panels", [])


def targets(model: Json) -> Iterator[tuple[Json, Json]]:
    """Yield (panel, target) for every query of every panel."""
    for panel in all_panels(model):
        for target in panel.get("targets", []):
            yield panel, target


def records() -> dict[str, str]:
    """Return the recording rules of deploy/prometheus/rules: name -> expression."""
    out = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    out[rule["record"]] = rule["expr"]
    return out


def exporter_metrics() -> set[str]:
    """Return the sample names a worker's /metrics can carry, from the exporter's own code."""
    registry = CollectorRegistry()
    PipelineMetrics(registry, ["pageviews"])
    families = [
        *registry.collect(),
        *HealthCollector(None).describe(),  # type: ignore[arg-type]  # describe reads nothing
        *KpiCollector(None).describe(),  # type: ignore[arg-type]
    ]
    names = set()
    for family in families:
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "Inf", "NaN"}


def metric_names(expr: str) -> set[str]:
    """Return the metric names an expression selects (a small PromQL scanner).

    Strings, label matchers, range/subquery brackets and grouping label lists are removed
    first; what is left that is not a function name or keyword is a metric name.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or aggregation
        if match.group() not in _KEYWORDS:
            names.add(match.group())
    return names


def substitute(expr: str, window: str, *, campaign: str = ".*", channel: str = ".*") -> str:
    """Replace Grafana's variables as Grafana would (multi-value ones as a regex)."""
    text = expr
    for name, value in (
        ("__rate_interval", "1m"),
        ("__interval", "15s"),
        ("__range", "6h"),
        ("window", window),
        ("campaign", campaign),
        ("channel", channel),
    ):
        text = text.replace(f"${{{name}}}", value).replace(f"${name}", value)
    assert "$" not in text, f"an unknown variable is left in {text!r}"
    return text


def provisioned_datasource_uid() -> str:
    data = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = data["datasources"]
    uid: str = source["uid"]
    return uid
