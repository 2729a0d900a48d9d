"""docker-compose.yml: the whole stack, checked without Docker.

Structure from the YAML itself; the Compose specification schema, interpolation and
consistency from compose-go (Docker Compose's own loader, built by .ci/deploy-tools).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from _deploy_helpers import (
    COMPOSE_FILE,
    COMPOSE_PROMETHEUS,
    REPO,
    isolate_streamkpi_env,
    promtool,
    unknown_streamkpi_vars,
)

from streamkpi.config import load_settings

# The first test to need the tools may install them (.ci/deploy-tools): about a minute of
# compiling on a fresh machine, more on a busy one.
pytestmark = pytest.mark.timeout(900)

COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
WORKERS = ("worker-1", "worker-2")
STREAMKPI_SERVICES = ("topic-init", *WORKERS, "generator")
# Services that run once, or serve nothing to check; each must disable the image's
# /healthz check explicitly (it would mark them unhealthy forever).
NO_HEALTHCHECK = {
    "topic-init": "a one-shot job",
    "generator": "serves no web page; restart: unless-stopped revives it",
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_?KEY|CREDENTIAL", re.IGNORECASE)
REQUIRED_VAR = re.compile(r"^\$\{[A-Z_][A-Z0-9_]*:\?[^}]*\}$")
A_PASSWORD = "not-a-real-password"  # what a user would export before `docker compose up`


def _bind_mounts() -> list[tuple[str, str]]:
    mounts = []
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume["source"]
            if source.startswith((".", "/")):
                mounts.append((name, source))
    return mounts


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _composecheck(tools: dict[str, str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("GRAFANA_ADMIN_PASSWORD",)}
    return subprocess.run(
        [tools["COMPOSECHECK"], str(COMPOSE_FILE)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def resolved(tools: dict[str, str]) -> dict[str, Any]:
    """Return the project as Docker Compose resolves it (interpolated, normalised)."""
    result = _composecheck(tools, GRAFANA_ADMIN_PASSWORD=A_PASSWORD)
    assert result.returncode == 0, result.stderr
    project: dict[str, Any] = json.loads(result.stdout)
    return project


def test_compose_has_every_service_of_the_stack() -> None:
    assert set(SERVICES) == {
        "kafka",
        "topic-init",
        *WORKERS,
        "generator",
        "prometheus",
        "alertmanager",
        "grafana",
    }


def test_compose_file_satisfies_the_compose_specification(resolved: dict[str, Any]) -> None:
    # why: composecheck exits 1 on a schema violation (checked in the next test's twin)
    assert set(resolved["services"]) == set(SERVICES)


def test_compose_loader_rejects_what_the_specification_forbids(
    tools: dict[str, str], tmp_path: Path
) -> None:
    # A negative control: the loader really validates (a misspelled condition).
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(
        COMPOSE_FILE.read_text().replace(
            "condition: service_completed_successfully", "condition: service_completed"
        )
    )
    shutil.copytree(REPO / "deploy" / "compose", tmp_path / "deploy" / "compose")
    result = subprocess.run(
        [tools["COMPOSECHECK"], str(bad)],
        env={**os.environ, "GRAFANA_ADMIN_PASSWORD": A_PASSWORD},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "service_completed_successfully" in result.stderr


def test_grafana_admin_password_is_required_not_written(tools: dict[str, str]) -> None:
    result = _composecheck(tools)
    assert result.returncode == 1
    assert "GRAFANA_ADMIN_PASSWORD" in result.stderr


@pytest.mark.parametrize(("service", "source"), _bind_mounts())
def test_every_bind_mounted_host_path_exists_in_the_repo(service: str, source: str) -> None:
    # why: Docker creates a missing bind source as an empty root-owned directory, so a
    # missing file would start Prometheus/Alertmanager/Grafana with a directory instead.
    path = (COMPOSE_FILE.parent / source).resolve()
    assert path.is_relative_to(REPO), f"{service} mounts {source} from outside the repo"
    assert path.exists(), f"{service} bind-mounts {source}, which does not exist"


def test_every_dependency_exists_and_has_a_condition() -> None:
    for name, service in SERVICES.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on without conditions"
        for target, rule in depends_on.items():
            assert target in SERVICES, f"{name} depends on unknown {target}"
            assert rule["condition"] in {
                "service_started",
                "service_healthy",
                "service_completed_successfully",
            }, f"{name} -> {target}"


def test_streamkpi_services_wait_for_a_healthy_kafka_and_the_created_topics() -> None:
    assert SERVICES["topic-init"]["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    for name in (*WORKERS, "generator"):
        assert SERVICES[name]["depends_on"] == {
            "kafka": {"condition": "service_healthy"},
            "topic-init": {"condition": "service_completed_successfully"},
        }, name
    assert SERVICES["grafana"]["depends_on"]["prometheus"] == {"condition": "service_healthy"}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_image_is_pinned_to_a_tag(service: str) -> None:
    image = SERVICES[service]["image"]
    name, _, tag = image.rpartition(":")
    assert name, f"{service}: {image} has no tag"
    assert "/" not in tag, f"{service}: {image} has no tag"
    assert tag != "latest", f"{service}: {image}"
    assert re.search(r"\d", tag), f"{service}: {image} is not a version"


def test_streamkpi_services_build_one_image_from_this_repo() -> None:
    images = {SERVICES[name]["image"] for name in STREAMKPI_SERVICES}
    assert images == {"streamkpi:0.1.0"}
    for name in STREAMKPI_SERVICES:
        assert SERVICES[name]["build"] == {"context": "."}, name
    assert (REPO / "Dockerfile").is_file()


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_long_running_services_have_healthchecks(service: str) -> None:
    healthcheck = SERVICES[service].get("healthcheck", {})
    if service in NO_HEALTHCHECK:
        assert healthcheck == {"disable": True}, f"{service}: {NO_HEALTHCHECK[service]}"
        return
    assert SERVICES[service]["restart"] == "unless-stopped"
    test = healthcheck["test"]
    assert test[0] in ("CMD", "CMD-SHELL"), service
    assert len(test) > 1, service
    for key in ("interval", "timeout", "retries", "start_period"):
        assert key in healthcheck, f"{service}: healthcheck without {key}"


def test_workers_check_their_own_healthz() -> None:
    for name in WORKERS:
        command = " ".join(SERVICES[name]["healthcheck"]["test"])
        assert "http://127.0.0.1:6066/healthz" in command, name
        assert "curl" not in command  # not in python:slim


def test_topic_init_runs_once() -> None:
    assert SERVICES["topic-init"]["command"] == ["topics", "create"]
    assert SERVICES["topic-init"]["restart"] == "no"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_published_ports_are_bound_to_loopback(service: str) -> None:
    for port in SERVICES[service].get("ports", []):
        assert isinstance(port, str), f"{service}: long port syntax, write host_ip"
        assert port.startswith("127.0.0.1:"), f"{service}: {port}"


def test_published_host_ports_do_not_collide(resolved: dict[str, Any]) -> None:
    published = [
        port["published"]
        for service in resolved["services"].values()
        for port in service.get("ports", [])
    ]
    assert len(published) == len(set(published)), published


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_no_secret_is_written_in_the_file(service: str) -> None:
    for name, value in _environment(SERVICES[service]).items():
        if SECRET_NAME.search(name):
            assert REQUIRED_VAR.match(value), f"{service}: {name} must be ${{VAR:?message}}"


def test_workers_have_distinct_worker_ids(resolved: dict[str, Any]) -> None:
    # why: the worker id is the Kafka transactional id; two workers sharing one would
    # fence each other at every checkpoint.
    ids = [resolved["services"][name]["environment"]["STREAMKPI_WORKER_ID"] for name in WORKERS]
    assert len(set(ids)) == len(WORKERS), ids


@pytest.mark.parametrize("service", STREAMKPI_SERVICES)
def test_streamkpi_environment_is_valid_settings(
    service: str, resolved: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {k: str(v) for k, v in resolved["services"][service]["environment"].items()}
    assert unknown_streamkpi_vars(env) == [], "a misspelled variable is silently ignored"
    isolate_streamkpi_env(monkeypatch, env)
    settings = load_settings()
    assert settings.bootstrap_servers == "kafka:19092"
    assert settings.web_host == "0.0.0.0"
    assert settings.web_port == 6066


def test_worker_ports_match_the_settings_and_the_scrape_targets(resolved: dict[str, Any]) -> None:
    config = yaml.safe_load(COMPOSE_PROMETHEUS.read_text())
    (job,) = config["scrape_configs"]
    (static,) = job["static_configs"]
    web_port = {int(resolved["services"][n]["environment"]["STREAMKPI_WEB_PORT"]) for n in WORKERS}
    assert web_port == {6066}
    assert sorted(static["targets"]) == [f"{name}:6066" for name in WORKERS]
    for name in WORKERS:
        (port,) = resolved["services"][name]["ports"]
        assert port["target"] == 6066
        assert port["host_ip"] == "127.0.0.1"


def test_compose_prometheus_alerts_to_alertmanager_with_the_project_rules() -> None:
    config = yaml.safe_load(COMPOSE_PROMETHEUS.read_text())
    local = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == local["rule_files"]
    assert config["global"] == local["global"]
    (manager,) = config["alerting"]["alertmanagers"]
    assert manager["static_configs"] == [{"targets": ["alertmanager:9093"]}]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["prometheus"]["volumes"]}
    assert mounts == {
        "/etc/prometheus/prometheus.yml": "./deploy/compose/prometheus.yml",
        "/etc/prometheus/rules": "./deploy/prometheus/rules",
        "/etc/prometheus/alerts": "./deploy/prometheus/alerts",
    }


def test_promtool_accepts_the_compose_prometheus_config_as_mounted(tmp_path: Path) -> None:
    # The container's layout: the config beside the mounted rules/ and alerts/.
    shutil.copy(COMPOSE_PROMETHEUS, tmp_path / "prometheus.yml")
    for folder in ("rules", "alerts"):
        source = REPO / "deploy" / "prometheus" / folder
        if source.is_dir():  # a missing one fails test_every_bind_mounted_host_path_exists
            (tmp_path / folder).symlink_to(source)
    result = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    rules = sum(
        len(group["rules"])
        for path in sorted((REPO / "deploy" / "prometheus").glob("*/*.yml"))
        if path.parent.name in ("rules", "alerts")
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups", [])
    )
    # promtool reports each rule file's count: together they must be every rule.
    found = re.findall(r"SUCCESS: (\d+) rules found", result.stdout)
    assert sum(int(n) for n in found) == rules, result.stdout


@pytest.mark.parametrize("service", STREAMKPI_SERVICES)
def test_streamkpi_commands_are_real_cli_commands(
    service: str, resolved: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Parses the container's arguments with the real CLI (unknown options, bad values
    # fail) without running anything.
    from streamkpi.cli import cli

    args = list(resolved["services"][service]["command"])
    isolate_streamkpi_env(monkeypatch, {})
    command: click.Command = cli
    ctx = click.Context(cli, info_name="streamkpi")
    name, rest = "streamkpi", args
    while isinstance(command, click.Group):  # no group options are used: name first
        name, *rest = rest
        sub = command.get_command(ctx, name)
        assert sub is not None, f"{service}: no command {name!r} in {ctx.command_path}"
        command = sub
        if isinstance(sub, click.Group):
            ctx = click.Context(sub, info_name=name, parent=ctx)
    leaf = command.make_context(name, rest, parent=ctx)
    assert leaf.args == [], f"{service}: unexpected arguments {leaf.args}"


def test_grafana_provisioned_datasource_is_the_compose_prometheus() -> None:
    datasources = REPO / "grafana" / "provisioning" / "datasources"
    urls = [
        source["url"]
        for path in sorted(datasources.glob("*.yml"))
        for source in yaml.safe_load(path.read_text())["datasources"]
        if source["type"] == "prometheus"
    ]
    assert urls == ["http://prometheus:9090"]
