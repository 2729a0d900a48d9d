"""Build events and drive a PartitionEngine in tests; read its cells and windows as dicts."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from streamkpi.events import (
    AdSpendEvent,
    EmailEvent,
    Event,
    Kind,
    OrderEvent,
    PageviewEvent,
    SurveyEvent,
)
from streamkpi.exporter.pipeline import Outcome
from streamkpi.kpis.engine import EngineConfig, PartitionEngine

# 2025-11-26T12:00:00Z: a multiple of every bucket size used here.
T0 = 1_764_158_400.0

# Short horizons so every timer fires within a test's few thousand seconds.
SMALL = EngineConfig(
    bucket_s=60,
    window_s={"5m": 300, "1h": 3600},
    allowed_lateness_s=60,
    dedup_horizon_s=300,
    session_gap_s=600,
    visitor_memory_s=3600,
    email_memory_s=3600,
    customer_memory_s=7200,
    churn_after_s=1800,
    abandon_after_s=600,
    lead_events=frozenset({"signup"}),
    max_campaigns=50,
    max_pages=50,
)

_ids = itertools.count()


def config(**changes: Any) -> EngineConfig:
    """Return SMALL with ``changes``."""
    fields = {name: getattr(SMALL, name) for name in SMALL.__dataclass_fields__}
    return EngineConfig(**(fields | changes))


def _eid(fields: dict[str, Any]) -> str:
    return str(fields.pop("event_id", None) or f"e{next(_ids)}")


def pageview(ts: float, visitor: str = "v1", **fields: Any) -> PageviewEvent:
    """Return a pageviews event (a page_view unless ``type`` says otherwise)."""
    event_id = _eid(fields)
    return PageviewEvent.model_validate(
        {"event_id": event_id, "ts": ts, "visitor_id": visitor, **fields}
    )


def email(
    ts: float, recipient: str = "r1", type: str = "sent", campaign: str = "news", **fields: Any
) -> EmailEvent:
    """Return an e-mails event."""
    event_id = _eid(fields)
    return EmailEvent.model_validate(
        {
            "event_id": event_id,
            "ts": ts,
            "recipient_id": recipient,
            "type": type,
            "campaign": campaign,
            **fields,
        }
    )


def order(ts: float, customer: str = "c1", type: str = "purchase", **fields: Any) -> OrderEvent:
    """Return an orders event; ``amount`` is taken to be in the reporting currency."""
    event_id = _eid(fields)
    if "amount" in fields:
        fields.setdefault("currency", "EUR")
        fields.setdefault("amount_reporting", Decimal(str(fields["amount"])))
    return OrderEvent.model_validate(
        {"event_id": event_id, "ts": ts, "customer_id": customer, "type": type, **fields}
    )


def adspend(ts: float, campaign: str, channel: str, cost: str, **fields: Any) -> AdSpendEvent:
    """Return an adspend event with ``cost`` in the reporting currency."""
    event_id = _eid(fields)
    return AdSpendEvent.model_validate(
        {
            "event_id": event_id,
            "ts": ts,
            "campaign": campaign,
            "channel": channel,
            "cost": cost,
            "currency": "EUR",
            "cost_reporting": Decimal(cost),
            **fields,
        }
    )


def survey(ts: float, respondent: str, score: int, **fields: Any) -> SurveyEvent:
    """Return a surveys event."""
    event_id = _eid(fields)
    return SurveyEvent.model_validate(
        {"event_id": event_id, "ts": ts, "respondent_id": respondent, "score": score, **fields}
    )


KIND_OF: dict[type[Event], Kind] = {
    PageviewEvent: Kind.pageviews,
    EmailEvent: Kind.emails,
    OrderEvent: Kind.orders,
    AdSpendEvent: Kind.adspend,
    SurveyEvent: Kind.surveys,
}


class Feed:
    """An engine plus the next offset of each kind."""

    def __init__(self, engine: PartitionEngine | None = None, **changes: Any) -> None:
        """Drive ``engine`` (default: a new one with SMALL + ``changes``)."""
        self.engine = engine or PartitionEngine(0, config(**changes))

    def __call__(self, *events: Event) -> list[Outcome]:
        """Process ``events`` in order; return their outcomes."""
        outcomes = []
        for event in events:
            kind = KIND_OF[type(event)]
            outcomes.append(self.engine.process(kind, event, self.engine.next_offset(kind)))
        return outcomes

    def cells(self) -> dict[tuple[str, int, tuple[str, ...]], Any]:
        """Return (component, bucket offset from T0 in s, labels) -> value."""
        return {
            (name, int(start - T0), labels): value
            for name, start, labels, value in self.engine.bucket_values()
        }

    def component(self, name: str) -> dict[tuple[int, tuple[str, ...]], Any]:
        """Return (bucket offset from T0, labels) -> value of one component."""
        return {(start, labels): v for (n, start, labels), v in self.cells().items() if n == name}

    def total(self, name: str) -> Any:
        """Return the sum of a component over all buckets and labels."""
        return sum(self.component(name).values())

    def windows(self, reference_s: float) -> dict[tuple[str, str, tuple[str, ...]], Any]:
        """Return (component, window, labels) -> value at ``reference_s``."""
        return {
            (name, window, labels): value
            for name, window, labels, value in self.engine.window_values(reference_s)
        }
