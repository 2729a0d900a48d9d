"""A real Alertmanager for tests: loopback, a free port, temp storage, no clustering."""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from _server import ServerProcess

from streamkpi.alerts.routing import load_alertmanager_config, with_webhook_receivers


def alertmanager_binary() -> str:
    """Return the alertmanager binary (Debian: prometheus-alertmanager); fail when missing."""
    for name in ("alertmanager", "prometheus-alertmanager"):
        binary = shutil.which(name)
        if binary is not None:
            return binary
    pytest.fail(
        "these tests need a real Alertmanager: apt-get install prometheus-alertmanager "
        "(.ci/run installs it)",
        pytrace=False,
    )


def config_with_webhook(webhook_url: str, wait: str = "1s") -> dict[str, Any]:
    """Return the shipped Alertmanager config with every receiver a webhook to the test.

    Routes, grouping and inhibition stay as shipped; only the receivers' targets and the
    group timings (seconds, not minutes) change.
    """
    return with_webhook_receivers(load_alertmanager_config(), webhook_url, group_wait=wait)


class AlertmanagerProcess(ServerProcess):
    """One Alertmanager on 127.0.0.1 with its own storage directory and config."""

    name = "alertmanager"

    def __init__(self, workdir: Path, config: dict[str, Any]) -> None:
        super().__init__(workdir)
        self.config = workdir / "alertmanager.yml"
        self.config.write_text(yaml.safe_dump(config, sort_keys=False))

    def argv(self) -> list[str]:
        return [
            alertmanager_binary(),
            f"--config.file={self.config}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",  # no gossip: a single test instance
            "--log.level=warn",
        ]

    def alerts(self) -> list[dict[str, Any]]:
        """Return the alerts Alertmanager holds (API v2)."""
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=10) as response:
            data: list[dict[str, Any]] = json.load(response)
        return data
