"""Paths shared by the alert tests; the rule tests' helpers (promtool) are reused."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rules"))
