"""deploy/kubernetes: kustomize renders it, kubeconform accepts it, and it fits the worker.

kustomize and kubeconform come from .ci/deploy-tools, with offline schemas: Kubernetes'
own (strict: unknown fields fail) and the prometheus-operator CRDs' (PodMonitor,
PrometheusRule), made strict the same way. Nothing is skipped.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from _deploy_helpers import (
    BASE,
    OVERLAY,
    isolate_streamkpi_env,
    unknown_streamkpi_vars,
)

from streamkpi.config import load_settings
from streamkpi.rules.kubernetes import build_prometheus_rule, load_rule_files

# The first test to need the tools may install them (.ci/deploy-tools): about a minute of
# compiling on a fresh machine, more on a busy one.
pytestmark = pytest.mark.timeout(900)

KUSTOMIZATIONS = {"base": BASE, "overlay": OVERLAY}


def _build(tools: dict[str, str], directory: Path) -> str:
    result = subprocess.run(
        [tools["KUSTOMIZE"], "build", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _kubeconform(tools: dict[str, str], manifests: str) -> tuple[int, dict[str, Any]]:
    result = subprocess.run(
        [
            tools["KUBECONFORM"],
            "-strict",
            "-summary",
            "-output=json",
            f"-kubernetes-version={tools['KUBERNETES_VERSION']}",
            f"-schema-location={tools['K8S_SCHEMA_LOCATION']}",
            f"-schema-location={tools['CRD_SCHEMA_LOCATION']}",
            "-",
        ],
        input=manifests,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report: dict[str, Any] = json.loads(result.stdout)
    return result.returncode, report


@pytest.fixture(scope="module")
def rendered(tools: dict[str, str]) -> dict[str, str]:
    """Return the kustomize output of the base and the example overlay."""
    return {name: _build(tools, directory) for name, directory in KUSTOMIZATIONS.items()}


def _objects(text: str) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(text) if doc}


def _worker(rendered: dict[str, str], name: str = "base") -> dict[str, Any]:
    pod: dict[str, Any] = _objects(rendered[name])["StatefulSet"]["spec"]["template"]["spec"]
    return pod


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_kubeconform_accepts_every_object_with_a_schema(
    name: str, tools: dict[str, str], rendered: dict[str, str]
) -> None:
    code, report = _kubeconform(tools, rendered[name])
    summary = report["summary"]
    assert code == 0, report["resources"]
    assert summary["invalid"] == summary["errors"] == summary["skipped"] == 0, summary
    assert summary["valid"] == len(_objects(rendered[name])) == 7


@pytest.mark.parametrize(
    ("kind", "old", "new"),
    [
        # why: strict Kubernetes schemas, a misspelled field of a built-in kind
        ("StatefulSet", "podManagementPolicy:", "podManagmentPolicy:"),
        # why: strict CRD schemas, a misspelled field of the PodMonitor
        ("PodMonitor", "podMetricsEndpoints:", "podMetricEndpoints:"),
        # why: a rule needs record or alert; the CRD refuses anything else in a rule
        ("PrometheusRule", "    - record: ", "    - recrd: "),
    ],
)
def test_kubeconform_rejects_a_misspelled_field(
    kind: str, old: str, new: str, tools: dict[str, str]
) -> None:
    # The negative control: the schemas are really applied, and strictly.
    source = {
        "StatefulSet": BASE / "statefulset.yaml",
        "PodMonitor": BASE / "podmonitor.yaml",
        "PrometheusRule": BASE / "prometheusrule.yaml",
    }[kind]
    text = source.read_text()
    assert old in text
    code, report = _kubeconform(tools, text.replace(old, new, 1))
    assert code == 1
    assert report["summary"]["invalid"] == 1, report
    assert new.strip(" -:") in report["resources"][0]["msg"]


def test_base_holds_the_worker_and_its_monitoring(rendered: dict[str, str]) -> None:
    assert set(_objects(rendered["base"])) == {
        "ServiceAccount",
        "ConfigMap",
        "Service",
        "StatefulSet",
        "PodDisruptionBudget",
        "PodMonitor",
        "PrometheusRule",
    }


def test_worker_runs_non_root_on_a_read_only_root_filesystem(rendered: dict[str, str]) -> None:
    pod = _worker(rendered)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    # What the worker writes goes to volumes: its data_dir and /tmp.
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert mounts == {env["STREAMKPI_DATA_DIR"], "/tmp"}


def test_worker_has_requests_limits_and_probes_on_healthz(rendered: dict[str, str]) -> None:
    (container,) = _worker(rendered)["containers"]
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}, kind
    (port,) = container["ports"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert port == {"name": "web", "containerPort": int(env["STREAMKPI_WEB_PORT"])}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "web"}, probe


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_worker_settings_are_valid(
    name: str, rendered: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = _objects(rendered[name])
    (container,) = _worker(rendered, name)["containers"]
    env = {
        e["name"]: e.get("value", "streamkpi-0")  # the fieldRef: the pod's name
        for e in container["env"]
    }
    assert unknown_streamkpi_vars(env) == [], "a misspelled variable is silently ignored"
    # The config file is the ConfigMap's key, mounted where STREAMKPI_CONFIG_FILE says.
    config_path = Path(env.pop("STREAMKPI_CONFIG_FILE"))
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "config"]
    (volume,) = [v for v in _worker(rendered, name)["volumes"] if v["name"] == "config"]
    configmap = objects["ConfigMap"]
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    assert config_path.parent == Path(mount["mountPath"])
    local = tmp_path / config_path.name
    local.write_text(configmap["data"][config_path.name])
    isolate_streamkpi_env(monkeypatch, env)
    settings = load_settings(local)
    assert settings.worker_id == "streamkpi-0"
    assert settings.web_host == "0.0.0.0"
    # why: a partition has one reader, so workers past topic_partitions stand idle
    replicas = objects["StatefulSet"]["spec"]["replicas"]
    assert replicas <= settings.topic_partitions


def test_worker_id_is_the_stable_pod_name(rendered: dict[str, str]) -> None:
    # why: the worker id is the transactional id; a StatefulSet pod keeps its name across
    # restarts, so a restarted worker fences its own zombie at once.
    (container,) = _worker(rendered)["containers"]
    (worker_id,) = [e for e in container["env"] if e["name"] == "STREAMKPI_WORKER_ID"]
    assert worker_id["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_podmonitor_scrapes_the_worker_pods_web_port(rendered: dict[str, str]) -> None:
    objects = _objects(rendered["base"])
    monitor = objects["PodMonitor"]["spec"]
    pod_labels = objects["StatefulSet"]["spec"]["template"]["metadata"]["labels"]
    assert monitor["selector"]["matchLabels"].items() <= pod_labels.items()
    (endpoint,) = monitor["podMetricsEndpoints"]
    assert endpoint == {"port": "web", "path": "/metrics", "interval": "15s"}


def test_service_governs_the_statefulset_headless(rendered: dict[str, str]) -> None:
    objects = _objects(rendered["base"])
    assert objects["Service"]["spec"]["clusterIP"] == "None"
    assert objects["StatefulSet"]["spec"]["serviceName"] == objects["Service"]["metadata"]["name"]


def test_overlay_labels_monitoring_for_the_prometheus_release(rendered: dict[str, str]) -> None:
    objects = _objects(rendered["overlay"])
    for kind in ("PodMonitor", "PrometheusRule"):
        assert objects[kind]["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert all(o["metadata"]["namespace"] == "marketing" for o in objects.values())


def test_rendered_prometheusrule_is_the_generated_one(rendered: dict[str, str]) -> None:
    manifest = _objects(rendered["base"])["PrometheusRule"]
    expected = build_prometheus_rule(load_rule_files())
    assert manifest["spec"] == expected["spec"]
