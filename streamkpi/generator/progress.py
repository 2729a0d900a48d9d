"""Progress of the live generator: totals, rates and one status line (pure, clock injected)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from streamkpi.events import Kind
from streamkpi.generator.incidents import Incident

__all__ = ["Progress", "pace_sleep_s"]


def pace_sleep_s(tick_s: float, tick_started_s: float, now_s: float) -> float:
    """Return how long to sleep so that ticks start every ``tick_s`` (0 when behind)."""
    return max(0.0, tick_started_s + tick_s - now_s)


@dataclass
class Progress:
    """Counts produced records per topic and reports rates since the start and lately."""

    started_s: float
    totals: dict[Kind, int] = field(default_factory=lambda: dict.fromkeys(Kind, 0))
    _mark_s: float = field(init=False)
    _mark_total: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        """Start the recent-rate interval at the start."""
        self._mark_s = self.started_s

    @property
    def total(self) -> int:
        """Return every record produced so far."""
        return sum(self.totals.values())

    def add(self, kinds: Iterable[Kind]) -> None:
        """Count one produced record per item of ``kinds``."""
        for kind in kinds:
            self.totals[kind] += 1

    def rates(self, now_s: float) -> tuple[float, float]:
        """Return (events/s lately, events/s since the start); start a new recent interval."""
        total = self.total
        recent_s = now_s - self._mark_s
        recent = (total - self._mark_total) / recent_s if recent_s > 0 else 0.0
        elapsed_s = now_s - self.started_s
        mean = total / elapsed_s if elapsed_s > 0 else 0.0
        self._mark_s, self._mark_total = now_s, total
        return recent, mean

    def line(
        self,
        now_s: float,
        *,
        target_rate: float,
        behind_s: float = 0.0,
        suppressed: int = 0,
        incidents: Iterable[Incident] = (),
    ) -> str:
        """Return a status line (and start a new recent-rate interval)."""
        recent, mean = self.rates(now_s)
        elapsed = int(now_s - self.started_s)
        clock = f"{elapsed // 3600}:{elapsed % 3600 // 60:02d}:{elapsed % 60:02d}"
        topics = " ".join(f"{kind.value} {n:,}" for kind, n in self.totals.items())
        parts = [
            f"{clock} {self.total:,} events",
            f"{recent:,.1f}/s now (target {target_rate:,.1f}/s), {mean:,.1f}/s mean",
            topics,
        ]
        if suppressed:
            parts.append(f"{suppressed:,} lost to incidents")
        if behind_s >= 1:
            parts.append(f"BEHIND by {behind_s:.1f}s (more than this producer can send)")
        elapsed_s = now_s - self.started_s
        for incident in incidents:
            state = "ACTIVE" if incident.active(elapsed_s) else "pending"
            if incident.for_s is not None and elapsed_s >= incident.at_s + incident.for_s:
                state = "over"
            parts.append(f"incident {incident.describe()} [{state}]")
        return " | ".join(parts)
