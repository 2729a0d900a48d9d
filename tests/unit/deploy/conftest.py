"""Fixtures of the deploy tests: the tools of .ci/deploy-tools, installed once per session."""

from __future__ import annotations

import pytest
from _deploy_helpers import deploy_tools


@pytest.fixture(scope="session")
def tools() -> dict[str, str]:
    """Return the tool paths and schema locations printed by .ci/deploy-tools."""
    return deploy_tools()
