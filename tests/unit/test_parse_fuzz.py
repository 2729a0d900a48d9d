"""Property-based fuzzing of ``parse`` for every topic (#12).

Hypothesis profiles (``ci`` by default, ``HYPOTHESIS_PROFILE=long`` on demand) are in
``tests/unit/conftest.py``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from streamkpi import jsonbytes
from streamkpi.events import (
    MAX_ENGAGED_MS,
    MAX_ID_CHARS,
    MAX_LABEL_CHARS,
    Kind,
    PageviewEvent,
    ParseContext,
    Rejection,
    parse,
)

NOW_S = 1_704_067_200.0
CTX = ParseContext(rates={"EUR": Decimal(1), "USD": Decimal("0.9")})
FIELDS = [
    "event_id", "ts", "visitor_id", "session_id", "type", "engaged_ms", "name", "page",
    "referrer", "campaign", "utm_source", "utm_medium", "channel", "recipient_id",
    "bounce_kind", "machine_open", "customer_id", "cart_id", "order_id", "amount",
    "currency", "cost", "respondent_id", "score",
]  # fmt: skip
TYPES = ["page_view", "engagement", "key_event", "sent", "opened", "purchase", "refund"]
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=300),
    st.sampled_from([*TYPES, "EUR", "USD", "email", "paid", str(NOW_S), "2024-01-01T00:00:00Z"]),
)
objects = st.dictionaries(st.sampled_from(FIELDS), values, max_size=12)


def _within_bounds(event: Any) -> None:
    for name in ("event_id", "visitor_id", "session_id", "customer_id", "cart_id", "order_id"):
        value = getattr(event, name, None)
        assert value is None or len(value) <= MAX_ID_CHARS
    for name in ("campaign", "page", "name", "utm_source", "utm_medium"):
        value = getattr(event, name, None)
        assert value is None or len(value) <= MAX_LABEL_CHARS
    if isinstance(event, PageviewEvent):
        assert event.engaged_ms is None or 0 <= event.engaged_ms <= MAX_ENGAGED_MS
        assert event.page is None or ("?" not in event.page and "#" not in event.page)
    for name in ("amount", "cost"):
        value = getattr(event, name, None)
        assert value is None or (value.is_finite() and 0 <= value < Decimal("1e15"))
    jsonbytes.dumps(event.model_dump(mode="json"))  # encodable: no >64-bit int, no NaN


@given(kind=st.sampled_from(list(Kind)), body=objects)
def test_parse_never_raises_and_accepts_only_bounded_events(
    kind: Kind, body: dict[str, Any]
) -> None:
    base = {"event_id": "e", "ts": NOW_S, "visitor_id": "v", "customer_id": "c"}
    raw = json.dumps({**base, **body}).encode()
    result = parse(kind, raw, CTX, NOW_S)
    if not isinstance(result, Rejection):
        _within_bounds(result)


@given(kind=st.sampled_from(list(Kind)), raw=st.binary(max_size=200))
def test_parse_never_raises_on_any_bytes(kind: Kind, raw: bytes) -> None:
    result = parse(kind, raw, CTX, NOW_S)
    if not isinstance(result, Rejection):
        _within_bounds(result)
