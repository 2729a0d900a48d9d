"""Property-based fuzzing of the whole record path (#12): bytes -> parse -> engine ->
checkpoint entries -> restore.

Hostile message values (any JSON type in any field, ids and labels at and past their
bounds, huge and odd numbers, unicode that JSON must escape) over a few shared ids, so
sessions, carts, e-mail pairs and duplicates interact. At every checkpoint each entry
must be decodable JSON that fits a producer batch; at the end an engine restored from
all entries must equal the original, and both must agree after more records.

Hypothesis profiles (``ci`` by default, ``HYPOTHESIS_PROFILE=long`` on demand) are in
``tests/unit/conftest.py``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson
from _engine_helpers import config
from hypothesis import example, given
from hypothesis import strategies as st

from streamkpi.events import Kind, ParseContext, Rejection, parse
from streamkpi.kpis.engine import PartitionEngine
from streamkpi.topics import BATCH_BYTES

T0 = 1_764_158_400.0
NOW_S = T0 + 5_000  # the worker's clock: late events and future ones both occur
CTX = ParseContext(rates={"EUR": Decimal(1), "USD": Decimal("0.9")})
CONFIG = config(max_open_carts=3, max_campaigns=3, max_pages=3)

LONG = "\x01" * 256  # an id at its bound that JSON escapes to 6 bytes a character
hostile = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=260),
    st.sampled_from(["", LONG, LONG + "x", "\U0001f600" * 200, "1e999999", "-0", "NaN"]),
)
ids = st.sampled_from(["a", "b", LONG, "\u00e9" * 256])
labels = st.sampled_from([None, "x", "y", "z", "w", "\x02" * 200])
pages = st.sampled_from([None, "/", "/a", "/b?x=1", "/c", "/p?email=j@x.org#f", "/" + "\x02" * 199])
TYPES = {
    Kind.pageviews: ["page_view", "engagement", "key_event"],
    Kind.emails: ["sent", "delivered", "bounced", "opened", "clicked", "complained"],
    Kind.orders: ["cart_created", "checkout_started", "purchase", "refund"],
    Kind.adspend: [None],
    Kind.surveys: [None],
}


@st.composite
def messages(draw: st.DrawFn) -> tuple[Kind, bytes]:
    """Return one message: a plausible event of a kind with some fields made hostile."""
    kind = draw(st.sampled_from(list(Kind)))
    body: dict[str, Any] = {
        "event_id": draw(st.sampled_from(["e1", "e2", LONG])) + str(draw(st.integers(0, 40))),
        "ts": T0 + draw(st.floats(min_value=-600, max_value=5_400)),
        "visitor_id": draw(ids),
        "session_id": draw(st.sampled_from([None, "s1", "s2"])),
        "recipient_id": draw(ids),
        "customer_id": draw(ids),
        "respondent_id": draw(ids),
        "cart_id": draw(st.sampled_from([None, "k1", "k2", "k3", "k4", LONG])),
        "campaign": draw(labels),
        "page": draw(pages),
        "channel": draw(st.sampled_from([None, "paid", "email", "PAID"])),
        "name": draw(st.sampled_from(["signup", "purchase", "video"])),
        "engaged_ms": draw(st.sampled_from([0, 9_999, 10_000, 86_400_000, 2**63, 2**64])),
        "amount": draw(st.sampled_from(["0", "19.99", "999999999999999.99", "1e15", 5])),
        "cost": draw(st.sampled_from(["0.5", "100", "1e14"])),
        "currency": draw(st.sampled_from(["EUR", "usd", "XXX"])),
        "score": draw(st.integers(-1, 11)),
        "machine_open": draw(st.booleans()),
    }
    kind_type = draw(st.sampled_from(TYPES[kind]))
    if kind_type is not None:
        body["type"] = kind_type
    if kind is Kind.adspend and body["campaign"] is None:
        body["campaign"] = "x"
    for field in draw(st.lists(st.sampled_from(sorted(body)), max_size=3)):
        body[field] = draw(hostile)
    # json, not orjson: integers beyond 64 bits must reach parse.
    return kind, json.dumps(body).encode()


steps = st.lists(
    st.one_of(
        messages(),
        st.just("checkpoint"),
        st.tuples(st.sampled_from(list(Kind)), st.floats(min_value=0, max_value=6_000)),
    ),
    min_size=1,
    max_size=40,
)


def _run(engine: PartitionEngine, step: Any, offsets: dict[Kind, int], out: list[Any]) -> None:
    if step == "checkpoint":
        out.extend(_checked(engine.take_dirty()))
    elif isinstance(step[1], float):  # an idle watermark advance
        engine.advance_watermark(step[0], T0 + step[1])
    else:
        kind, raw = step
        offset = offsets[kind]
        offsets[kind] = offset + 1
        if offset < engine.next_offset(kind):
            return
        result = parse(kind, raw, CTX, NOW_S)
        if isinstance(result, Rejection):
            engine.record_offset(kind, offset)
        else:
            engine.process(kind, result, offset)


def _checked(entries: list[tuple[bytes, bytes | None]]) -> list[tuple[bytes, bytes | None]]:
    for key, value in entries:
        assert len(key) + len(value or b"") < BATCH_BYTES - 1024, key[:80]
        if value is not None:
            orjson.loads(value)  # what restore reads back
    return entries


def _observe(engine: PartitionEngine) -> dict[str, Any]:
    return {
        "state": engine.debug_state(),
        "windows": sorted(engine.window_values(NOW_S), key=repr),
        "offsets": {kind: engine.next_offset(kind) for kind in Kind},
        "watermarks": {kind: engine.watermark(kind) for kind in Kind},
    }


def _pageview(n: int, event_id: str = "", **fields: Any) -> tuple[Kind, bytes]:
    body = {"event_id": event_id or f"p{n}", "ts": T0 + n / 1000, "visitor_id": "v", **fields}
    return Kind.pageviews, json.dumps(body).encode()


# The reproductions of #12, always run beside the random examples: one engaged_ms of
# 2**64, two of 2**63 in one session (their sum), and 1,000 event ids that JSON escapes
# to 1.5 KB each in one dedup slot.
ENGAGED = {"type": "engagement"}


@given(before=steps, after=steps)
@example(before=[_pageview(0, engaged_ms=2**64, **ENGAGED)], after=[])
@example(before=[_pageview(n, engaged_ms=2**63, **ENGAGED) for n in range(2)], after=[])
@example(before=[_pageview(n, f"{n:04d}" + "\x01" * 252) for n in range(1000)], after=[])
def test_no_record_breaks_the_engine_or_its_checkpoint_and_restore(
    before: list[Any], after: list[Any]
) -> None:
    original = PartitionEngine(0, CONFIG)
    offsets = dict.fromkeys(Kind, 0)
    entries: list[tuple[bytes, bytes | None]] = []
    for step in before:
        _run(original, step, offsets, entries)
    entries.extend(_checked(original.take_dirty()))
    restored = PartitionEngine.restore(0, CONFIG, entries)
    assert _observe(restored) == _observe(original)
    # Both go on from the checkpoint alike (the restored one skips nothing: same offsets).
    for engine in (original, restored):
        more = dict(offsets)
        for step in after:
            _run(engine, step, more, [])
    assert _observe(restored) == _observe(original)
    labels = {labels for _, _, labels, _ in original.window_values(NOW_S)}
    assert not any("email=" in value for values in labels for value in values)  # PII
