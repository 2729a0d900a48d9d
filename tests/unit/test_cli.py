"""The command line as a user meets it: help that lists commands, one-line errors, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def streamkpi(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STREAMKPI_")}
    return subprocess.run(
        [sys.executable, "-m", "streamkpi", *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_lists_the_subcommands() -> None:
    result = streamkpi("--help")
    assert result.returncode == 0
    for command in ("worker", "run", "kafka", "topics", "config"):
        assert f"\n  {command} " in result.stdout


def test_worker_help_names_its_options_and_env() -> None:
    result = streamkpi("worker", "--help")
    assert result.returncode == 0
    assert "--bootstrap-servers" in result.stdout
    assert "STREAMKPI_BOOTSTRAP_SERVERS" in result.stdout
    assert "consumer group" in result.stdout


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        # why: a bad env var is refused before any connection is tried
        (
            ["worker"],
            {"STREAMKPI_WEB_PORT": "0"},
            "streamkpi: error: invalid setting 'web_port' (env STREAMKPI_WEB_PORT): "
            "Input should be greater than or equal to 1",
        ),
        # why: a bad option value goes through the same validation
        (
            ["worker", "--bootstrap-servers", "x", "--web-port", "99999"],
            {},
            "streamkpi: error: invalid setting 'web_port' (env STREAMKPI_WEB_PORT): "
            "Input should be less than or equal to 65535",
        ),
        # why: a missing config file is a configuration error too
        (
            ["--config", "/nonexistent.yaml", "config", "show"],
            {},
            "streamkpi: error: config file '/nonexistent.yaml' does not exist",
        ),
    ],
)
def test_bad_setting_gives_one_line_and_exit_2(
    args: list[str], env: dict[str, str], message: str
) -> None:
    result = streamkpi(*args, env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == message
    assert "Traceback" not in result.stderr + result.stdout


def test_config_show_masks_secrets() -> None:
    env = {
        "STREAMKPI_KAFKA__PROTOCOL": "SASL_PLAINTEXT",
        "STREAMKPI_KAFKA__SASL_USERNAME": "svc",
        "STREAMKPI_KAFKA__SASL_PASSWORD": "hunter2",
    }
    result = streamkpi("config", "show", env=env)
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout
    assert "sasl_username: svc" in result.stdout
