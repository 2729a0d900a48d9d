"""Fixtures of the dashboard tests."""

from __future__ import annotations

import os

import pytest

from streamkpi.config import Settings


@pytest.fixture
def default_settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Return Settings() without the caller's STREAMKPI_* variables (the committed files')."""
    for name in list(os.environ):
        if name.startswith("STREAMKPI_"):
            monkeypatch.delenv(name)
    return Settings()
