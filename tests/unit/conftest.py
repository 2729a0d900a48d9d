"""Hypothesis profiles of the fuzz tests, registered once for the whole unit suite.

``ci`` (default) keeps CI fast; ``long`` runs on demand:
``HYPOTHESIS_PROFILE=long .venv/bin/pytest tests/unit/test_parse_fuzz.py
tests/unit/kpis/test_record_path_fuzz.py``. Registered here, not per module: a profile is
global, so two modules registering ``ci`` differently would silently share the last one.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("long", max_examples=20_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
