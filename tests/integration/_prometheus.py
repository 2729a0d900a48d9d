"""A real Prometheus server for tests: scrapes given targets with the project's rule files."""

from __future__ import annotations

import json
import shutil
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from _server import ServerProcess

REPO = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((REPO / "deploy" / "prometheus" / "rules").glob("*.yml"))


def prometheus_binary() -> str:
    """Return the prometheus binary; fail (never skip) with a hint when it is missing."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail(
            "these tests need a real Prometheus: apt-get install prometheus (.ci/run installs it)",
            pytrace=False,
        )
    return binary


class PrometheusProcess(ServerProcess):
    """A Prometheus on a free loopback port with 1 s scrape and rule evaluation.

    ``rule_files`` may hold recording and alert rules alike; with ``alertmanager_url``
    Prometheus sends its alerts there.
    """

    name = "prometheus"

    def __init__(
        self,
        workdir: Path,
        targets: list[str],
        rule_files: list[Path],
        alertmanager_url: str | None = None,
    ) -> None:
        super().__init__(workdir)
        self.config = workdir / "prometheus.yml"
        config: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [{"job_name": "streamkpi", "static_configs": [{"targets": targets}]}],
        }
        if alertmanager_url is not None:
            host = urllib.parse.urlsplit(alertmanager_url).netloc
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [host]}]}]}
        self.config.write_text(yaml.safe_dump(config))

    def argv(self) -> list[str]:
        return [
            prometheus_binary(),
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]

    def query(self, expr: str) -> list[tuple[dict[str, str], float]]:
        """Run an instant query; return (labels without __name__, value) per sample."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as response:
            body: dict[str, Any] = json.load(response)
        assert body["status"] == "success", body
        out = []
        for item in body["data"]["result"]:
            labels = {k: v for k, v in item["metric"].items() if k != "__name__"}
            out.append((labels, float(item["value"][1])))
        return out

    def alerts(self) -> list[dict[str, Any]]:
        """Return the pending and firing alerts (``/api/v1/alerts``)."""
        with urllib.request.urlopen(f"{self.url}/api/v1/alerts", timeout=10) as response:
            body: dict[str, Any] = json.load(response)
        assert body["status"] == "success", body
        alerts: list[dict[str, Any]] = body["data"]["alerts"]
        return alerts
