"""Fixtures of the rule tests."""

from __future__ import annotations

import os

import pytest

from streamkpi.config import Settings


@pytest.fixture
def default_windows(monkeypatch: pytest.MonkeyPatch) -> tuple[str, ...]:
    """Return Settings().windows without the caller's STREAMKPI_* variables (the committed files'
    windows)."""
    for name in list(os.environ):
        if name.startswith("STREAMKPI_"):
            monkeypatch.delenv(name)
    return Settings().windows
