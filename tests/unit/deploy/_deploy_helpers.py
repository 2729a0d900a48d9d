"""Paths, the deploy tools (.ci/deploy-tools) and Settings checks shared by the deploy tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from streamkpi.config import ENV_PREFIX, Settings

REPO = Path(__file__).resolve().parents[3]
COMPOSE_FILE = REPO / "docker-compose.yml"
COMPOSE_PROMETHEUS = REPO / "deploy" / "compose" / "prometheus.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
KUBERNETES = REPO / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
OVERLAY = KUBERNETES / "overlays" / "example"
TOOLS_SCRIPT = REPO / ".ci" / "deploy-tools"

# Read by the CLI's --config option, not a Settings field.
CONFIG_FILE_ENV = "STREAMKPI_CONFIG_FILE"


def deploy_tools() -> dict[str, str]:
    """Install (or reuse) the deploy tools; fail, never skip, when that is impossible."""
    env = {**os.environ, "PYTHON": sys.executable}
    try:
        result = subprocess.run(
            ["bash", str(TOOLS_SCRIPT)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=840,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{TOOLS_SCRIPT} took over 14 minutes")
    if result.returncode != 0:
        pytest.fail(
            f"{TOOLS_SCRIPT} failed (needs go and the Go module proxy, pip and PyPI):\n"
            + result.stderr[-4000:]
        )
    return dict(
        line.split("=", 1) for line in result.stdout.splitlines() if "=" in line and line.isascii()
    )


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the real promtool; fail (never skip) when it is not installed."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found on PATH: install Debian's prometheus package (.ci/run)")
    return subprocess.run(
        [path, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _env_names(model: type[BaseModel], prefix: str) -> Iterator[str]:
    for name, field in model.model_fields.items():
        yield prefix + name.upper()
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _env_names(annotation, prefix + name.upper() + "__")


def settings_env_names() -> frozenset[str]:
    """Return every STREAMKPI_* variable that sets a Settings field (nested with __)."""
    return frozenset(_env_names(Settings, ENV_PREFIX))


def unknown_streamkpi_vars(env: Mapping[str, Any]) -> list[str]:
    """Return the STREAMKPI_* names of ``env`` that no setting reads (a typo is ignored)."""
    known = settings_env_names() | {CONFIG_FILE_ENV}
    return sorted(n for n in env if n.startswith(ENV_PREFIX) and n not in known)


def isolate_streamkpi_env(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> None:
    """Replace the caller's STREAMKPI_* variables with ``env``'s."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
