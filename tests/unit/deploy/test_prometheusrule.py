"""The PrometheusRule manifest: the rule files of deploy/prometheus, group for group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from _deploy_helpers import BASE, REPO

from streamkpi.rules.kubernetes import (
    RuleFileError,
    build_prometheus_rule,
    load_rule_files,
    main,
    render_prometheus_rule,
    write_prometheus_rule,
)

MANIFEST = BASE / "prometheusrule.yaml"
REGENERATE = "run `python -m streamkpi.rules.kubernetes` and commit"

RECORD = {"record": "overall:x:sum5m", "expr": "sum(x)"}
ALERT = {"alert": "StreamkpiX", "expr": "x > 1", "for": "5m", "labels": {"severity": "page"}}


def test_committed_manifest_is_what_the_rule_files_generate() -> None:
    assert write_prometheus_rule(manifest=MANIFEST, check=True) is None, REGENERATE


def test_manifest_holds_every_group_and_rule_of_the_rule_files() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    files = load_rule_files()
    assert [name for name, _ in files][:1] == ["rules/streamkpi-kpis.yml"]
    groups = [g for _, doc in files for g in (doc or {}).get("groups", [])]
    assert manifest["spec"]["groups"] == groups
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
    assert manifest["kind"] == "PrometheusRule"


def test_alert_files_are_included_after_the_recording_rules(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "alerts").mkdir()
    (tmp_path / "rules" / "r.yml").write_text(yaml.safe_dump({"groups": [_group("r", RECORD)]}))
    (tmp_path / "alerts" / "b.yml").write_text(yaml.safe_dump({"groups": [_group("b", ALERT)]}))
    (tmp_path / "alerts" / "a.yml").write_text("")  # empty: nothing, no error
    (tmp_path / "alerts" / "notes.txt").write_text("not a rule file")
    manifest = yaml.safe_load(render_prometheus_rule(tmp_path))
    assert [g["name"] for g in manifest["spec"]["groups"]] == ["r", "b"]
    assert manifest["spec"]["groups"][1]["rules"] == [ALERT]


def _group(name: str, *rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "rules": list(rules), **extra}


@pytest.mark.parametrize(
    ("files", "message"),
    [
        # why: Prometheus and the operator refuse a group name used twice
        ([("a", {"groups": [_group("g", RECORD)]}), ("b", {"groups": [_group("g", ALERT)]})],
         "group 'g' is already defined in a"),
        # why: a typo in a group key would be dropped silently by no one: refuse it
        ([("a", {"groups": [_group("g", RECORD, intervall="1m")]})], "unknown keys"),
        ([("a", {"groups": [_group("g", {**RECORD, "alert": "X"})]})], "record or an alert"),
        ([("a", {"groups": [_group("g", {"record": "x"})]})], "rule without expr"),
        ([("a", {"groups": [{"rules": []}]})], "needs a name"),
        ([("a", ["not", "a", "mapping"])], "a rule file is a mapping"),
    ],
)  # fmt: skip
def test_build_refuses_what_the_operator_would(files: list[Any], message: str) -> None:
    with pytest.raises(RuleFileError, match=message):
        build_prometheus_rule(files)


def test_build_keeps_group_options_and_sets_name_and_labels() -> None:
    group = _group("g", RECORD, interval="30s", limit=10)
    manifest = build_prometheus_rule(
        [("a", {"groups": [group]})], name="kpis", labels={"release": "x"}
    )
    assert manifest["metadata"] == {"name": "kpis", "labels": {"release": "x"}}
    assert manifest["spec"] == {"groups": [group]}


def test_main_check_reports_a_stale_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "prometheusrule.yaml"
    stale.write_text(MANIFEST.read_text().replace("sum5m", "sum6m", 1))
    assert main(["--check", "--manifest", str(stale)]) == 1
    assert "sum6m" in capsys.readouterr().out
    assert main(["--manifest", str(stale)]) == 0
    assert stale.read_text() == MANIFEST.read_text()
    assert main(["--check", "--manifest", str(stale)]) == 0


def test_manifest_is_listed_in_the_kustomization() -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    assert "prometheusrule.yaml" in kustomization["resources"]
    assert MANIFEST.is_relative_to(REPO)
