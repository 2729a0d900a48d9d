"""EngineConfig: the plain values the KPI engine counts with (README, "KPI definitions")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streamkpi.config import Settings

__all__ = ["EngineConfig"]


def _default_windows() -> dict[str, int]:
    return {"5m": 300, "1h": 3600, "24h": 86_400}


@dataclass(frozen=True)
class EngineConfig:
    """Bucket size, windows, lateness, timer horizons and label caps, in seconds and counts.

    The defaults are those of ``streamkpi.config.Settings`` (a test keeps them in step);
    workers build it with :meth:`from_settings`.
    """

    bucket_s: int = 60
    # Window label -> length; kept sorted shortest first (the order windows are exported in).
    window_s: Mapping[str, int] = field(default_factory=_default_windows)
    allowed_lateness_s: int = 300
    dedup_horizon_s: int = 3600
    session_gap_s: int = 1800
    visitor_memory_s: int = 30 * 86_400
    email_memory_s: int = 30 * 86_400
    customer_memory_s: int = 400 * 86_400
    churn_after_s: int = 90 * 86_400
    abandon_after_s: int = 1800
    max_open_carts: int = 50
    lead_events: frozenset[str] = frozenset({"signup"})
    purchase_event: str = "purchase"
    max_campaigns: int = 50
    max_pages: int = 50
    campaign_allowlist: frozenset[str] = frozenset()
    # GA4's engaged-session threshold (10 s of engagement time).
    engaged_ms_threshold: int = 10_000

    def __post_init__(self) -> None:
        """Check what the engine relies on; copy and sort the windows shortest first."""
        if self.bucket_s < 1:
            raise ValueError(f"bucket_s must be >= 1, got {self.bucket_s}")
        if not self.window_s:
            raise ValueError("at least one window is needed")
        for label, seconds in self.window_s.items():
            if seconds <= 0 or seconds % self.bucket_s:
                raise ValueError(
                    f"window {label} ({seconds} s) is not a whole number of {self.bucket_s} s"
                    " buckets"
                )
        if len(set(self.window_s.values())) != len(self.window_s):
            raise ValueError("two windows have the same length")
        if not 0 <= self.allowed_lateness_s < self.session_gap_s:
            # A non-late event could otherwise belong before a session that replaced it.
            raise ValueError("allowed_lateness_s must be >= 0 and smaller than session_gap_s")
        for name in (
            "dedup_horizon_s",
            "visitor_memory_s",
            "email_memory_s",
            "customer_memory_s",
            "churn_after_s",
            "abandon_after_s",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.max_open_carts < 1:
            raise ValueError("max_open_carts must be >= 1")
        if self.max_campaigns < 1 or self.max_pages < 1:
            raise ValueError("max_campaigns and max_pages must be >= 1")
        ordered = dict(sorted(self.window_s.items(), key=lambda item: item[1]))
        object.__setattr__(self, "window_s", ordered)
        object.__setattr__(self, "lead_events", frozenset(self.lead_events))
        object.__setattr__(self, "campaign_allowlist", frozenset(self.campaign_allowlist))

    @property
    def longest_window_s(self) -> int:
        """Return the length of the longest exported window."""
        return max(self.window_s.values())

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineConfig:
        """Build the engine's config from the worker's settings."""
        return cls(
            bucket_s=settings.bucket_s,
            window_s=settings.window_seconds,
            allowed_lateness_s=settings.allowed_lateness_s,
            dedup_horizon_s=settings.dedup_horizon_s,
            session_gap_s=settings.session_gap_s,
            visitor_memory_s=settings.visitor_memory_s,
            email_memory_s=settings.email_memory_s,
            customer_memory_s=settings.customer_memory_s,
            churn_after_s=settings.churn_after_s,
            abandon_after_s=settings.abandon_after_s,
            max_open_carts=settings.max_open_carts,
            lead_events=frozenset(settings.lead_events),
            purchase_event=settings.purchase_event,
            max_campaigns=settings.labels.max_campaigns,
            max_pages=settings.labels.max_pages,
            campaign_allowlist=frozenset(settings.labels.campaign_allowlist),
        )
