"""EngineConfig: defaults in step with Settings, and refusal of what the engine cannot do."""

from __future__ import annotations

from typing import Any

import pytest

from streamkpi.config import Settings
from streamkpi.kpis.engine import EngineConfig


def test_defaults_match_the_settings_defaults() -> None:
    assert EngineConfig() == EngineConfig.from_settings(Settings.model_construct())


def test_from_settings_carries_every_engine_setting() -> None:
    settings = Settings.model_construct(
        bucket_s=30,
        windows=("1m", "10m"),
        allowed_lateness_s=5,
        lead_events=("signup", "demo"),
    )
    config = EngineConfig.from_settings(settings)
    assert config.window_s == {"1m": 60, "10m": 600}
    assert config.bucket_s == 30
    assert config.allowed_lateness_s == 5
    assert config.lead_events == frozenset({"signup", "demo"})


def test_windows_are_ordered_shortest_first() -> None:
    config = EngineConfig(window_s={"1h": 3600, "5m": 300})
    assert list(config.window_s) == ["5m", "1h"]
    assert config.longest_window_s == 3600


@pytest.mark.parametrize(
    "changes",
    [
        {"window_s": {"90s": 90}},  # why: not a whole number of 60 s buckets
        {"window_s": {}},  # why: nothing to export
        {"window_s": {"a": 60, "b": 60}},  # why: two windows of one length
        {"allowed_lateness_s": 1800},  # why: must be smaller than session_gap_s
        {"bucket_s": 0},  # why: no bucket
        {"dedup_horizon_s": -1},  # why: negative horizon
        {"max_campaigns": 0},  # why: a cap of nothing
    ],
)
def test_invalid_config_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"."):
        EngineConfig(**changes)
