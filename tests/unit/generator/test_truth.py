"""The ground truth pins the KPI definitions: hand-built streams, hand-counted cells.

Every expected value below is counted by hand from the README's words, as issue #11
redefined them (each outcome in the bucket of the moment it is decided); a row's
``# why`` says which clause it pins. Streams use one partition unless a row says otherwise.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest

from streamkpi.config import Settings
from streamkpi.events import Kind
from streamkpi.generator.stream import CURRENCY_RATES, Record
from streamkpi.generator.truth import BucketKey, Truth, TruthParams, ground_truth

T0 = 1_764_158_400  # 2025-11-26T12:00:00Z, the start of a 60 s bucket
NOW = T0 + 400 * 86_400  # the parse clock: later than every event of these tests
D = ("none", "direct")  # a pageview without campaign, tags or referrer
P = ("spring_sale", "paid")
N = ("none", "none")  # an order or survey without campaign and channel
E = ("c07", "email")

_ids = itertools.count()


def event(kind: Kind, ts: float, *, partition: int = 0, **fields: Any) -> Record:
    """Return a record of ``kind`` at ``ts`` (epoch seconds) with a fresh event_id."""
    payload = {"event_id": f"e{next(_ids)}", "ts": ts} | fields
    return Record(kind, partition, b"key", json.dumps(payload).encode())


def pv(ts: float, visitor: str = "v1", **fields: Any) -> Record:
    """Return a page_view of ``visitor`` on page ``/`` unless ``fields`` say otherwise."""
    return event(Kind.pageviews, ts, visitor_id=visitor, **({"page": "/"} | fields))


def engagement(ts: float, engaged_ms: int, visitor: str = "v1") -> Record:
    return event(Kind.pageviews, ts, visitor_id=visitor, type="engagement", engaged_ms=engaged_ms)


def key_event(ts: float, name: str, visitor: str = "v1", **fields: Any) -> Record:
    return event(Kind.pageviews, ts, visitor_id=visitor, type="key_event", name=name, **fields)


def email(ts: float, type_: str, recipient: str = "r1", campaign: str = "c07", **f: Any) -> Record:
    return event(Kind.emails, ts, recipient_id=recipient, campaign=campaign, type=type_, **f)


def order(ts: float, type_: str, customer: str = "cu1", **fields: Any) -> Record:
    return event(Kind.orders, ts, customer_id=customer, type=type_, **fields)


def purchase(ts: float, customer: str = "cu1", amount: str = "10.00", **fields: Any) -> Record:
    return order(ts, "purchase", customer, amount=amount, currency="EUR", **fields)


def truth(records: list[Record], **params: Any) -> Truth:
    return ground_truth(records, TruthParams(now_s=NOW, rates=CURRENCY_RATES, **params))


def cells(*parts: Mapping[BucketKey, int | Decimal]) -> dict[BucketKey, int | Decimal]:
    """Sum bucket dicts cell by cell, dropping zeros (as Truth.buckets does)."""
    total: dict[BucketKey, int | Decimal] = {}
    for part in parts:
        for key, value in part.items():
            total[key] = total.get(key, 0) + value
    return {key: value for key, value in total.items() if value != 0}


def at(
    offset_s: int, labels: tuple[str, ...] = D, **components: int | Decimal
) -> dict[BucketKey, int | Decimal]:
    """Return cells of the bucket ``T0 + offset_s`` (a bucket start) with ``labels``."""
    assert offset_s % 60 == 0
    return {(name, T0 + offset_s, labels): value for name, value in components.items()}


def started(
    offset_s: int, labels: tuple[str, ...] = D, page: str = "/", *, new: bool = True
) -> dict[BucketKey, int | Decimal]:
    """Return the cells a session start writes (README Pageviews, step 2)."""
    return cells(
        at(offset_s, labels, sessions=1, new_visitors=int(new)),
        at(offset_s, (page,), landing_sessions=1),
    )


def engaged(
    offset_s: int, labels: tuple[str, ...] = D, page: str = "/"
) -> dict[BucketKey, int | Decimal]:
    """Return the cells of a session becoming engaged, in the engaging event's bucket."""
    return cells(
        at(offset_s, labels, engaged_sessions=1), at(offset_s, (page,), landing_engaged_sessions=1)
    )


def ended(
    offset_s: int,
    labels: tuple[str, ...] = D,
    page: str = "/",
    *,
    bounced: bool = True,
    converted: bool = False,
    key: bool = False,
) -> dict[BucketKey, int | Decimal]:
    """Return the cells a session's end (or replacement) writes: what it never reached."""
    return cells(
        at(
            offset_s,
            labels,
            bounced_sessions=int(bounced),
            unconverted_sessions=int(not converted),
            sessions_without_key_event=int(not key),
        ),
        at(offset_s, (page,), landing_bounced_sessions=int(bounced)),
    )


LATER = T0 + 100_000  # a final watermark that fires every session and 30 min cart timer
FINAL = {"final_watermark_s": LATER}

# Defaults: session_gap_s 1800, allowed_lateness_s 300, so a session whose last event is
# at T0 + x ends (without a replacement) dated T0 + x + 2100.
SESSION_CASES = [
    pytest.param(
        [pv(T0)],
        FINAL,
        cells(started(0), at(0, pageviews=1), ended(2100)),
        # why: bounced, unconverted and without key event at last + gap + lateness
        id="one pageview is a session decided at its end",
    ),
    pytest.param(
        [pv(T0)],
        {},
        cells(started(0), at(0, pageviews=1)),
        id="a session open at the end of the stream decides nothing",
    ),
    pytest.param(
        [pv(T0)],
        {"final_watermark_s": T0 + 1799},
        cells(started(0), at(0, pageviews=1)),
        id="a session is open until the watermark reaches last + gap",
    ),
    pytest.param(
        [pv(T0)],
        {"final_watermark_s": T0 + 1800},
        cells(started(0), at(0, pageviews=1), ended(2100)),
        id="the watermark at exactly last + gap ends the session",
    ),
    pytest.param(
        [pv(T0 + 30)],
        {"allowed_lateness_s": 0, "final_watermark_s": LATER},
        cells(started(0), at(0, pageviews=1), ended(1800)),
        id="without lateness the end is dated last + gap",  # why: T0+30+1800 in bucket 1800
    ),
    pytest.param(
        [pv(T0), pv(T0 + 70)],
        FINAL,
        cells(
            started(0),
            at(0, pageviews=1),
            at(60, pageviews=1),
            engaged(60),
            ended(2160, bounced=False),
        ),
        # why: step 4, "its 2nd page_view" engages at its ts; the end at T0+70+2100
        id="the second page_view engages, in its own bucket",
    ),
    pytest.param(
        [pv(T0), pv(T0 + 1800)],
        FINAL,
        cells(
            started(0),
            at(0, pageviews=1),
            ended(1800),
            started(1800, new=False),
            at(1800, pageviews=1),
            ended(3900),
        ),
        # why: t >= last + gap starts a new session while the watermark (T0-300) has not
        # ended the old one: the old one is replaced, decided at T0+1800
        id="a hit exactly session_gap after the last replaces the session",
    ),
    pytest.param(
        [pv(T0), pv(T0 + 1799)],
        FINAL,
        cells(
            started(0),
            at(0, pageviews=1),
            at(1740, pageviews=1),
            engaged(1740),
            ended(3840, bounced=False),  # why: T0+1799+2100 = T0+3899
        ),
        id="a hit just inside the gap joins and moves the end",
    ),
    pytest.param(
        [pv(T0, session_id="a"), pv(T0 + 7200, session_id="a")],
        FINAL,
        cells(
            started(0),
            at(0, pageviews=1),
            at(7200, pageviews=1),
            engaged(7200),
            ended(9300, bounced=False),
        ),
        # why: equal session ids join whatever the gap, while the watermark has not ended S
        id="an equal session_id joins beyond the gap while the session is open",
    ),
    pytest.param(
        [pv(T0, session_id="a"), pv(T0 + 2200, "v2"), pv(T0 + 2300, session_id="a")],
        {},
        cells(
            started(0),
            at(0, pageviews=1),
            ended(2100),
            started(2160),
            at(2160, pageviews=1),
            started(2280, new=False),
            at(2280, pageviews=1),
        ),
        # why: v2 raises the watermark to T0+1900 >= T0+0+1800, so v1's session ended
        # (step 6), dated T0+2100, not at v2's ts; the later two are open at the end
        id="a session ended by the watermark is not joined by its session_id",
    ),
    pytest.param(
        [pv(T0, session_id="a"), pv(T0 + 70, session_id="b")],
        FINAL,
        cells(
            started(0),
            at(0, pageviews=1),
            ended(60),  # why: replaced, decided at the replacing hit's ts
            started(60, new=False),
            at(60, pageviews=1),
            ended(2160),  # why: session b ends at T0+70+2100
        ),
        id="a different session_id replaces the session, decided at the new hit",
    ),
    pytest.param(
        [
            pv(T0, session_id="a"),
            key_event(T0 + 10, "add_to_cart", session_id="a"),
            pv(T0 + 130, session_id="b"),
        ],
        {},
        cells(
            started(0),
            at(0, pageviews=1, key_event_sessions=1),
            engaged(0),
            ended(120, bounced=False, key=True),  # why: only unconverted is left to decide
            started(120, new=False),
            at(120, pageviews=1),
        ),
        id="a replaced session decides only what it never reached",
    ),
    pytest.param(
        [pv(T0), pv(T0 + 10, session_id="a")],
        {},
        cells(started(0), started(0, new=False), at(0, pageviews=2), ended(0)),
        id="a session_id on one side only replaces the session",  # why: "both ... or neither"
    ),
    pytest.param(
        [pv(T0), engagement(T0 + 1, 6000), engagement(T0 + 62, 4000)],
        FINAL,
        cells(started(0), at(0, pageviews=1), engaged(60), ended(2160, bounced=False)),
        id="engaged_ms adding up to 10000 engages, at the event reaching it",  # why: ">= 10 000"
    ),
    pytest.param(
        [pv(T0), engagement(T0 + 1, 6000), engagement(T0 + 2, 3999)],
        FINAL,
        cells(started(0), at(0, pageviews=1), ended(2100)),
        id="9999 engaged ms is still a bounce",
    ),
    pytest.param(
        [engagement(T0, 20_000)],
        {},
        cells(started(0, page="none"), engaged(0, page="none")),
        # why: any type starts a session; no page field -> landing page "none"; no pageview
        id="an engagement event alone starts an engaged session",
    ),
    pytest.param(
        [pv(T0), key_event(T0 + 65, "signup")],
        FINAL,
        cells(
            started(0),
            at(0, pageviews=1),
            engaged(60),
            at(60, key_event_sessions=1, leads=1, conversions=1),
            ended(2160, bounced=False, key=True),  # why: signup is not purchase_event
        ),
        id="a signup engages, is a key event, a lead and a conversion, but no purchase",
    ),
    pytest.param(
        [pv(T0), key_event(T0 + 5, "signup"), key_event(T0 + 65, "signup")],
        {},
        cells(
            started(0),
            engaged(0),
            at(0, pageviews=1, key_event_sessions=1, leads=1, conversions=1),
            at(60, leads=1, conversions=1),
        ),
        id="a session has a first key event once but every lead event counts",
    ),
    pytest.param(
        [pv(T0), key_event(T0 + 5, "add_to_cart")],
        {},
        cells(started(0), engaged(0), at(0, pageviews=1, key_event_sessions=1)),
        id="a key event not in lead_events is a key event without a lead",
    ),
    pytest.param(
        [key_event(T0, "Signup")],
        {},
        cells(started(0, page="none"), engaged(0, page="none"), at(0, key_event_sessions=1)),
        id="lead names match exactly",  # why: "Signup" is not in ("signup",)
    ),
    pytest.param(
        [pv(T0), key_event(T0 + 70, "purchase"), key_event(T0 + 130, "purchase")],
        FINAL,
        cells(
            started(0),
            at(0, pageviews=1),
            engaged(60),
            at(60, key_event_sessions=1, converted_sessions=1),
        ),
        # why: the end (T0+2230) has nothing left to decide: engaged, key event, converted
        id="a purchase key event converts the session once, at the first one",
    ),
    pytest.param(
        [pv(T0), key_event(T0 + 70, "purchase")],
        {"purchase_event": "order_completed", "final_watermark_s": LATER},
        cells(
            started(0),
            at(0, pageviews=1),
            engaged(60),
            at(60, key_event_sessions=1),
            ended(2160, bounced=False, key=True),
        ),
        id="a key event named purchase does not convert when purchase_event is another",
    ),
    pytest.param(
        [pv(T0), key_event(T0 + 70, "order_completed")],
        {"purchase_event": "order_completed", "final_watermark_s": LATER},
        cells(
            started(0),
            at(0, pageviews=1),
            engaged(60),
            at(60, key_event_sessions=1, converted_sessions=1),
        ),
        id="the key event named purchase_event converts",
    ),
    pytest.param(
        [
            pv(T0, page="/pricing", utm_medium="cpc", campaign="spring_sale"),
            pv(T0 + 70, referrer="https://www.google.com/"),
        ],
        FINAL,
        cells(
            started(0, P, "/pricing"),
            at(0, P, pageviews=1),
            at(60, P, pageviews=1),
            engaged(60, P, "/pricing"),
            ended(2160, P, "/pricing", bounced=False),
        ),
        id="pageviews and outcomes take the session's labels, not the event's",  # why: step 3
    ),
    pytest.param(
        [pv(T0 + 100, utm_medium="cpc", campaign="spring_sale"), pv(T0 + 30)],
        {},
        cells(started(60, P), at(60, P, pageviews=1), at(0, P, pageviews=1), engaged(0, P)),
        # why: processing order, not ts order, decides which hit starts (S.start = T0+100);
        # the engaging hit's ts dates the engagement, even before S.start
        id="out of order the first processed hit starts the session",
    ),
    pytest.param(
        [pv(T0 + 59), pv(T0 + 61)],
        {},
        cells(started(0), at(0, pageviews=1), at(60, pageviews=1), engaged(60)),
        id="engagement goes to the engaging event's bucket, not S.start's",
    ),
    pytest.param(
        [pv(T0), pv(T0 + 4000)],
        {"visitor_memory_s": 3600},
        cells(started(0), at(0, pageviews=1), ended(3960), started(3960), at(3960, pageviews=1)),
        # why: the watermark (T0-300) had not ended the first session: replaced at T0+4000
        id="a visitor unseen for longer than visitor_memory_s is new again",
    ),
    pytest.param(
        [pv(T0), pv(T0 + 4000)],
        {},
        cells(
            started(0),
            at(0, pageviews=1),
            ended(3960),
            started(3960, new=False),
            at(3960, pageviews=1),
        ),
        id="a returning visitor within memory is not new",
    ),
    pytest.param(
        [pv(T0 + 250, session_id="a"), pv(T0, session_id="b")],
        {"visitor_memory_s": 100},
        cells(
            started(240),
            at(240, pageviews=1),
            ended(0),  # why: the replacing hit's ts, though before the old session's start
            started(0, new=False),
            at(0, pageviews=1),
        ),
        # why: "an event of v with ts >= t - memory processed before" includes later ts
        id="an earlier-processed later hit makes the visitor known",
    ),
    pytest.param(
        [pv(T0), pv(T0 + 5, "v2", page="/blog")],
        FINAL,
        cells(
            started(0),
            at(0, pageviews=2),
            started(0, page="/blog"),
            ended(2100),
            ended(2100, page="/blog"),  # why: T0+5+2100 is in bucket T0+2100 too
        ),
        id="two visitors are two sessions",
    ),
]


@pytest.mark.parametrize(("records", "params", "expected"), SESSION_CASES)
def test_sessions(
    records: list[Record], params: dict[str, Any], expected: dict[BucketKey, int]
) -> None:
    assert truth(records, **params).buckets == expected


# ---------------------------------------------------------------------------------------
# Duplicates and lateness


def outcomes(result: Truth, kind: Kind = Kind.pageviews) -> dict[str, int]:
    return {o: n for (k, o), n in result.outcomes.items() if k == kind and n}


def with_id(record: Record, event_id: str, ts: float | None = None) -> Record:
    """Return ``record`` with another event_id (and ts)."""
    payload = json.loads(record.value) | {"event_id": event_id}
    if ts is not None:
        payload["ts"] = ts
    return Record(record.kind, record.partition, record.key, json.dumps(payload).encode())


ONE = pv(T0)
LATE_X = pv(T0, "v9", event_id="x")

OUTCOME_CASES = [
    pytest.param([ONE, ONE], {}, {"accepted": 1, "duplicate": 1}, id="a byte-identical retry"),
    pytest.param(
        [with_id(ONE, "x"), with_id(ONE, "x", T0 + 10)],
        {},
        {"accepted": 1, "duplicate": 1},
        id="the event_id is the dedup key, not the bytes",
    ),
    pytest.param(
        [pv(T0 + 1000), LATE_X, LATE_X],
        {},
        {"accepted": 1, "late": 2},
        id="a late event's id is not remembered",  # why: its retry is late, not duplicate
    ),
    pytest.param(
        [with_id(ONE, "x"), pv(T0 + 1000, "v2"), with_id(ONE, "x")],
        {},
        {"accepted": 2, "duplicate": 1},
        id="the duplicate check comes before the late check",  # why: T0 < watermark T0+700
    ),
    pytest.param(
        [with_id(ONE, "x"), pv(T0 + 900, "v2"), with_id(ONE, "x")],
        {"dedup_horizon_s": 600},
        {"accepted": 2, "duplicate": 1},
        # why: watermark T0+600 equals ts + horizon: not yet "passed"
        id="an id is remembered while the watermark equals ts + horizon",
    ),
    pytest.param(
        [with_id(ONE, "x"), pv(T0 + 901, "v2"), with_id(ONE, "x")],
        {"dedup_horizon_s": 600},
        {"accepted": 2, "late": 1},
        id="an id is forgotten once the watermark passes ts + horizon",
    ),
    pytest.param(
        [pv(T0 + 300), pv(T0, "v2")],
        {},
        {"accepted": 2},
        id="a ts equal to the watermark is on time",  # why: late = "below the watermark"
    ),
    pytest.param(
        [pv(T0 + 300), pv(T0 - 0.001, "v2")],
        {},
        {"accepted": 1, "late": 1},
        id="a ts 1 ms below the watermark is late",
    ),
    pytest.param(
        [pv(T0 + 1000), pv(T0, "v2", partition=1)],
        {},
        {"accepted": 2},
        id="each partition has its own watermark",
    ),
    pytest.param(
        [with_id(ONE, "x"), pv(T0, "v2", partition=1, event_id="x")],
        {},
        {"accepted": 2},
        id="each partition remembers its own ids",
    ),
    pytest.param(
        [event(Kind.pageviews, T0 + 1000, visitor_id=""), pv(T0)],
        {},
        {"invalid": 1, "accepted": 1},
        id="an invalid event does not raise the watermark",
    ),
    pytest.param(
        [pv(T0, "v1", event_id="x"), pv(T0 + 10, "v1", event_id="x", channel="tv")],
        {},
        {"accepted": 1, "invalid": 1},
        id="parsing comes before the duplicate check",  # why: step order
    ),
]


@pytest.mark.parametrize(("records", "params", "expected"), OUTCOME_CASES)
def test_outcomes(records: list[Record], params: dict[str, Any], expected: dict[str, int]) -> None:
    assert outcomes(truth(records, **params)) == expected


def test_watermarks_are_per_topic_as_well_as_per_partition() -> None:
    result = truth([pv(T0 + 1000), purchase(T0)])
    assert outcomes(result, Kind.pageviews) == {"accepted": 1}
    assert outcomes(result, Kind.orders) == {"accepted": 1}
    assert result.watermarks == {("pageviews", 0): T0 + 700, ("orders", 0): T0 - 300}


def test_a_duplicate_or_late_event_changes_no_count() -> None:
    first = pv(T0 + 1000)
    alone = truth([first])
    noisy = truth([first, first, pv(T0, "v2"), pv(T0 + 10, "v3")])
    assert outcomes(noisy) == {"accepted": 1, "duplicate": 1, "late": 2}
    assert noisy.buckets == alone.buckets


def test_every_outcome_of_every_kind_is_reported_even_at_zero() -> None:
    result = truth([])
    assert len(result.outcomes) == 20
    assert set(result.outcomes.values()) == {0}
    assert result.buckets == {}


def test_invalid_reasons_come_from_parse() -> None:
    records = [
        Record(Kind.pageviews, 0, b"k", b"not json"),
        Record(Kind.pageviews, 0, b"k", b"not json"),  # why: an invalid retry is invalid again
        pv(T0, channel="tv"),
        pv(NOW + 301),  # why: more than max_future_s ahead of now_s
        order(T0, "purchase", amount="10", currency="JPY"),
        event(Kind.surveys, T0, respondent_id="n1", score=11),
    ]
    result = truth(records)
    assert result.invalid_reasons == {
        ("pageviews", "invalid_json"): 2,
        ("pageviews", "bad_channel"): 1,
        ("pageviews", "future_ts"): 1,
        ("orders", "unknown_currency"): 1,
        ("surveys", "bad_score"): 1,
    }
    assert result.outcomes["pageviews", "invalid"] == 4
    assert result.buckets == {}


# ---------------------------------------------------------------------------------------
# E-mails

EMAIL_CASES = [
    pytest.param(
        [
            email(T0, "sent"),
            email(T0 + 1, "sent"),
            email(T0 + 2, "delivered"),
            email(T0 + 3, "bounced", bounce_kind="hard"),
            email(T0 + 60, "unsubscribed"),
            email(T0 + 61, "complained"),
        ],
        {},
        cells(
            at(0, E, emails_sent=2, emails_delivered=1, emails_bounced=1),
            at(60, E, email_unsubscribes=1, email_complaints=1),
        ),
        id="sends, deliveries, bounces, unsubscribes, complaints count every event",
    ),
    pytest.param(
        [email(T0, "delivered"), email(T0 + 70, "opened"), email(T0 + 100, "opened")],
        {},
        at(0, E, emails_delivered=1, email_unique_opens=1),
        # why: counted once per pair, in the bucket of its delivery, not the open's (T0+60)
        id="repeated human opens count once, in the delivery's bucket",
    ),
    pytest.param(
        [
            email(T0, "delivered"),
            email(T0 + 70, "opened", machine_open=True),
            email(T0 + 130, "opened", machine_open=False),
            email(T0 + 140, "opened", machine_open=True),
        ],
        {},
        at(0, E, emails_delivered=1, email_machine_opens=1, email_unique_opens=1),
        id="machine and human opens are counted apart, each once",
    ),
    pytest.param(
        [email(T0, "delivered"), email(T0 + 70, "clicked"), email(T0 + 80, "clicked")],
        {},
        at(0, E, emails_delivered=1, email_unique_clicks=1, email_unique_opens=1),
        id="repeated clicks count once, and the click counts a human open",
    ),
    pytest.param(
        [email(T0, "delivered"), email(T0 + 70, "clicked"), email(T0 + 80, "opened")],
        {},
        at(0, E, emails_delivered=1, email_unique_clicks=1, email_unique_opens=1),
        id="a human open after a click is not a second open",  # why: the click counted it
    ),
    pytest.param(
        [email(T0, "delivered"), email(T0 + 70, "opened"), email(T0 + 80, "clicked")],
        {},
        at(0, E, emails_delivered=1, email_unique_clicks=1, email_unique_opens=1),
        id="a click after a human open does not count the open again",
    ),
    pytest.param(
        [
            email(T0, "delivered"),
            email(T0 + 70, "opened", machine_open=True),
            email(T0 + 80, "clicked"),
        ],
        {},
        at(
            0,
            E,
            emails_delivered=1,
            email_machine_opens=1,
            email_unique_clicks=1,
            email_unique_opens=1,
        ),
        id="a machine open is no human open: the click still counts one",
    ),
    pytest.param(
        [
            email(T0 + 10, "opened"),
            email(T0 + 20, "opened", machine_open=True),
            email(T0 + 30, "clicked"),
            email(T0 + 130, "delivered"),
        ],
        {},
        at(
            120,
            E,
            emails_delivered=1,
            email_unique_opens=1,
            email_machine_opens=1,
            email_unique_clicks=1,
        ),
        id="opens and clicks before the delivery are pending, counted at the delivery",
    ),
    pytest.param(
        [email(T0, "sent"), email(T0 + 10, "opened"), email(T0 + 20, "clicked")],
        {},
        at(0, E, emails_sent=1),
        id="a pair never delivered never counts opens or clicks",
    ),
    pytest.param(
        [email(T0, "bounced", bounce_kind="soft"), email(T0 + 10, "opened")],
        {},
        at(0, E, emails_bounced=1),
        id="a bounce is no delivery",
    ),
    pytest.param(
        [email(T0, "delivered"), email(T0 + 70, "delivered"), email(T0 + 130, "opened")],
        {},
        cells(at(0, E, emails_delivered=1, email_unique_opens=1), at(60, E, emails_delivered=1)),
        id="the first delivery dates the cohort, a second one does not move it",
    ),
    pytest.param(
        [
            email(T0, "delivered"),
            email(T0, "delivered", campaign="c08"),
            email(T0 + 120, "delivered", "r2"),
            email(T0 + 200, "opened"),
            email(T0 + 200, "opened", campaign="c08"),
            email(T0 + 200, "opened", "r2"),
        ],
        {},
        cells(
            at(0, E, emails_delivered=1, email_unique_opens=1),
            at(120, E, emails_delivered=1, email_unique_opens=1),
            at(0, ("c08", "email"), emails_delivered=1, email_unique_opens=1),
        ),
        id="pairs are per recipient and campaign, each in its delivery's bucket",
    ),
    pytest.param(
        [email(T0, "delivered"), email(T0 + 10, "opened"), email(T0 + 3610, "opened")],
        {"email_memory_s": 3600},
        at(0, E, emails_delivered=1, email_unique_opens=1),
        id="an open exactly email_memory_s later is remembered",  # why: "more than"
    ),
    pytest.param(
        [email(T0, "delivered"), email(T0 + 10, "opened"), email(T0 + 3611, "opened")],
        {"email_memory_s": 3600},
        at(0, E, emails_delivered=1, email_unique_opens=1),
        # why: the forgotten pair's delivery is forgotten too: the new open is pending
        id="an open more than email_memory_s later waits for a new delivery",
    ),
    pytest.param(
        [
            email(T0, "delivered"),
            email(T0 + 10, "opened"),
            email(T0 + 3611, "opened"),
            email(T0 + 3700, "delivered"),
        ],
        {"email_memory_s": 3600},
        cells(
            at(0, E, emails_delivered=1, email_unique_opens=1),
            at(3660, E, emails_delivered=1, email_unique_opens=1),
        ),
        id="a forgotten pair starts a new cohort at its next delivery",
    ),
    pytest.param(
        [email(T0, "opened"), email(T0 + 3601, "delivered")],
        {"email_memory_s": 3600},
        at(3600, E, emails_delivered=1),
        id="a pending open is forgotten with its pair",
    ),
    pytest.param(
        [email(T0, "opened"), email(T0 + 3000, "delivered"), email(T0 + 5000, "opened")],
        {"email_memory_s": 3600},
        at(3000, E, emails_delivered=1, email_unique_opens=1),
        # why: T0+5000 is within 3600 s of the delivery's T0+3000: the same pair, opened
        id="any event of the pair refreshes its latest ts",
    ),
]


@pytest.mark.parametrize(("records", "params", "expected"), EMAIL_CASES)
def test_emails(
    records: list[Record], params: dict[str, Any], expected: dict[BucketKey, int]
) -> None:
    assert truth(records, **params).buckets == expected


# ---------------------------------------------------------------------------------------
# Orders: purchases, carts, customers

TEN = Decimal("10.00")


def bought(
    offset_s: int, labels: tuple[str, str] = N, amount: Decimal = TEN, *, activation: bool = True
) -> dict[BucketKey, int | Decimal]:
    """Return the cells of one purchase (README Orders)."""
    return cells(
        at(offset_s, labels, purchases=1, conversions=1, customer_activations=int(activation)),
        {("revenue", T0 + offset_s, labels): amount},
    )


CART = {"cart_id": "c1"}

# Defaults: abandon_after_s 1800, allowed_lateness_s 300, so a cart created at T0 + x and
# never bought is abandoned dated T0 + x + 2100.
ORDER_CASES = [
    pytest.param(
        [purchase(T0)],
        {},
        bought(0),
        id="a purchase: purchase, revenue, conversion, activation",
    ),
    pytest.param(
        [
            purchase(T0),
            order(T0 + 1, "purchase", "cu2", amount="10.00", currency="USD"),
            order(T0 + 2, "purchase", "cu3", amount="20", currency="GBP"),
        ],
        {},
        cells(
            at(0, N, purchases=3, conversions=3, customer_activations=3),
            {("revenue", T0, N): Decimal("42.6")},
        ),
        id="amounts are converted into the reporting currency",  # why: 10 + 9.20 + 23.40
    ),
    pytest.param(
        [
            purchase(T0, campaign="spring_sale", channel="PAID"),
            purchase(T0 + 100, campaign="spring_sale", channel="paid"),
        ],
        {},
        cells(bought(0, P), bought(60, P, activation=False), at(60, P, returning_purchases=1)),
        id="a second purchase is returning and does not re-activate",
    ),
    pytest.param(
        [purchase(T0), purchase(T0 + 1000)],
        {"customer_memory_s": 1000},
        cells(bought(0), bought(960, activation=False), at(960, N, returning_purchases=1)),
        id="a purchase exactly customer_memory_s before still makes it returning",  # why: ">="
    ),
    pytest.param(
        [purchase(T0), purchase(T0 + 1001)],
        {"customer_memory_s": 1000},
        cells(bought(0), bought(960, activation=False)),
        id="an older purchase does not make it returning",
    ),
    pytest.param(
        [purchase(T0), purchase(T0 + 5, "cu2")],
        {},
        cells(
            at(0, N, purchases=2, conversions=2, customer_activations=2),
            {("revenue", T0, N): Decimal(20)},
        ),
        id="another customer's purchase is not returning",
    ),
    pytest.param(
        [order(T0, "refund", amount="5.00", currency="EUR")],
        {},
        cells(at(0, N, refunds=1), {("refunded_revenue", T0, N): Decimal(5)}),
        id="a refund counts refunds and refunded revenue only",
    ),
    pytest.param(
        [order(T0, "cart_created", **CART), purchase(T0 + 600, **CART)],
        FINAL,
        cells(at(0, N, carts_created=1), bought(600), at(600, N, carts_purchased=1)),
        id="a purchase with the cart's id closes it as purchased, at the purchase",
    ),
    pytest.param(
        [
            order(T0, "cart_created", campaign="spring_sale", channel="paid", **CART),
            purchase(T0 + 600, **CART),
        ],
        FINAL,
        cells(at(0, P, carts_created=1), bought(600), at(600, P, carts_purchased=1)),
        id="a purchased cart keeps the cart's labels, not the purchase's",
    ),
    pytest.param(
        [order(T0, "cart_created", **CART), purchase(T0 + 600)],
        FINAL,
        cells(at(0, N, carts_created=1), bought(600), at(600, N, carts_purchased=1)),
        id="a purchase without cart_id closes it",
    ),
    pytest.param(
        [order(T0, "cart_created", **CART), purchase(T0 + 600, cart_id="c2")],
        FINAL,
        cells(at(0, N, carts_created=1), at(2100, N, carts_abandoned=1), bought(600)),
        id="a purchase of another cart does not close it",
    ),
    pytest.param(
        [order(T0, "cart_created", **CART), purchase(T0 + 1800, **CART)],
        FINAL,
        cells(at(0, N, carts_created=1), at(2100, N, carts_abandoned=1), bought(1800)),
        id="a purchase at cart ts + abandon_after is too late",  # why: [ts, ts + abandon)
    ),
    pytest.param(
        [purchase(T0 + 10), order(T0, "cart_created", **CART)],
        FINAL,
        cells(at(0, N, carts_created=1), at(2100, N, carts_abandoned=1), bought(0)),
        id="a purchase processed before the cart does not close it",  # why: "processed later"
    ),
    pytest.param(
        [order(T0, "cart_created", **CART), purchase(T0 + 600, "cu2")],
        FINAL,
        cells(at(0, N, carts_created=1), at(2100, N, carts_abandoned=1), bought(600)),
        id="another customer's purchase does not close it",
    ),
    pytest.param(
        [
            order(T0, "cart_created", campaign="spring_sale", channel="paid", **CART),
            purchase(T0 + 2100, "cu2"),
        ],
        {},
        cells(at(0, P, carts_created=1), at(2100, P, carts_abandoned=1), bought(2100)),
        # why: the watermark T0+1800 reaches the deadline; dated deadline + lateness
        id="the watermark abandons a cart, with the cart's labels",
    ),
    pytest.param(
        [order(T0 + 30, "cart_created", **CART)],
        {"abandon_after_s": 600, "allowed_lateness_s": 120, "final_watermark_s": LATER},
        cells(at(0, N, carts_created=1), at(720, N, carts_abandoned=1)),
        id="abandonment is dated cart ts + abandon_after + allowed_lateness",  # why: T0+750
    ),
    pytest.param(
        [order(T0, "cart_created", **CART), purchase(T0 + 2099, "cu2")],
        {},
        cells(at(0, N, carts_created=1), bought(2040)),
        id="a cart is open until the watermark reaches its deadline",
    ),
    pytest.param(
        [order(T0, "cart_created", **CART)],
        {},
        at(0, N, carts_created=1),
        id="a cart open at the end of the stream is neither bought nor abandoned",
    ),
    pytest.param(
        [order(T0, "cart_created"), order(T0 + 1, "checkout_started", **CART)],
        FINAL,
        {},
        id="cart_created without cart_id and checkout_started count nothing",
    ),
    pytest.param(
        [order(T0, "cart_created", **CART), order(T0 + 60, "cart_created", **CART)],
        FINAL,
        cells(at(0, N, carts_created=1), at(2100, N, carts_abandoned=1)),
        id="a cart_id that is open is not created again",
    ),
    pytest.param(
        [
            order(T0, "cart_created", **CART),
            purchase(T0 + 60, **CART),
            order(T0 + 120, "cart_created", **CART),
        ],
        FINAL,
        cells(
            at(0, N, carts_created=1),
            bought(60),
            at(60, N, carts_purchased=1),
            at(120, N, carts_created=1),
            at(2220, N, carts_abandoned=1),  # why: T0+120+2100
        ),
        id="a bought cart's id opens a new cart",
    ),
    pytest.param(
        [
            order(T0, "cart_created", **CART),
            order(T0 + 60, "cart_created", cart_id="c2"),
            purchase(T0 + 120),
        ],
        FINAL,
        cells(
            at(0, N, carts_created=1),
            at(60, N, carts_created=1),
            bought(120),
            at(120, N, carts_purchased=2),
        ),
        id="a purchase without cart_id closes every open cart of the customer",
    ),
]


@pytest.mark.parametrize(("records", "params", "expected"), ORDER_CASES)
def test_orders(
    records: list[Record], params: dict[str, Any], expected: dict[BucketKey, int]
) -> None:
    assert truth(records, **params).buckets == expected


CHURN_CASES = [
    pytest.param(
        [purchase(T0, campaign="spring_sale", channel="paid")],
        T0 + 3600,
        cells(bought(0, P), at(3600, P, churned_customers=1)),
        {},
        id="churn at latest purchase + churn_after, in that time's bucket",
    ),
    pytest.param(
        [purchase(T0, campaign="spring_sale", channel="paid")],
        T0 + 3599,
        bought(0, P),
        {P: 1},
        id="active until the watermark reaches it",
    ),
    pytest.param(
        [purchase(T0), purchase(T0 + 3000)],
        T0 + 6599,
        cells(bought(0), bought(3000, activation=False), at(3000, N, returning_purchases=1)),
        {N: 1},
        id="a later purchase postpones churn",
    ),
    pytest.param(
        [purchase(T0, campaign="spring_sale", channel="paid"), purchase(T0 + 60)],
        T0 + 3660,
        cells(
            bought(0, P),
            bought(60, activation=False),
            at(60, N, returning_purchases=1),
            at(3660, P, churned_customers=1),
        ),
        {},
        id="a customer keeps the activation's labels while active",
    ),
    pytest.param(
        [purchase(T0), order(T0 + 60, "refund", amount="10.00", currency="EUR")],
        T0 + 3600,
        cells(
            bought(0),
            at(60, N, refunds=1, refunded_revenue=TEN),
            at(3600, N, churned_customers=1),
        ),
        {},
        id="a refund does not keep a customer active",
    ),
    pytest.param(
        [
            purchase(T0, campaign="spring_sale", channel="paid"),
            purchase(T0 + 4000, "cu2"),
            purchase(T0 + 4100),
        ],
        None,
        cells(
            bought(0, P),
            at(3600, P, churned_customers=1),  # why: cu2 raises the watermark to T0+3700
            bought(3960),
            bought(4080),  # why: cu1 is no longer active: a new activation, with new labels
            at(4080, N, returning_purchases=1),
        ),
        {N: 2},
        id="a churned customer's next purchase re-activates",
    ),
]


@pytest.mark.parametrize(("records", "final_s", "expected", "active"), CHURN_CASES)
def test_churn(
    records: list[Record],
    final_s: float | None,
    expected: dict[BucketKey, int],
    active: dict[tuple[str, str], int],
) -> None:
    result = truth(records, churn_after_s=3600, final_watermark_s=final_s)
    assert result.buckets == expected
    assert result.active_customers == active


# ---------------------------------------------------------------------------------------
# Surveys and ad spend


def test_nps_counts_promoters_and_detractors_by_campaign() -> None:
    def answer(score: int, **fields: Any) -> Record:
        return event(Kind.surveys, T0, respondent_id="n1", score=score, **fields)

    records = [answer(s) for s in (10, 9, 8, 7, 6, 0)] + [answer(9, campaign="c07")]
    assert truth(records).buckets == cells(
        at(0, N, nps_responses=6, nps_promoters=2, nps_detractors=2),
        at(0, ("c07", "none"), nps_responses=1, nps_promoters=1),
    )


def test_ad_spend_sums_costs_in_the_reporting_currency() -> None:
    def spend(ts: float, cost: str, currency: str, channel: str = "paid") -> Record:
        return event(
            Kind.adspend, ts, campaign="spring_sale", channel=channel, cost=cost, currency=currency
        )

    records = [
        spend(T0, "100.00", "EUR"),
        spend(T0 + 30, "100", "USD"),
        spend(T0 + 70, "1.50", "GBP", "SOCIAL"),
    ]
    assert truth(records).buckets == {
        ("ad_spend", T0, P): Decimal("192.00"),  # why: 100 + 100 * 0.92
        ("ad_spend", T0 + 60, ("spring_sale", "social")): Decimal("1.755"),
    }


# ---------------------------------------------------------------------------------------
# Windows


def test_window_sum_adds_the_most_recent_buckets_up_to_the_reference() -> None:
    result = truth([pv(T0), pv(T0 + 60, "v2"), pv(T0 + 120, "v3"), purchase(T0 + 60)])
    assert result.window_sum("pageviews", D, 120, T0 + 150) == 2  # why: buckets T0+60, T0+120
    assert result.window_sum("pageviews", D, 180, T0 + 179) == 3
    assert result.window_sum("pageviews", D, 60, T0 + 59) == 1
    assert result.window_sum("pageviews", D, 60, T0 + 300) == 0
    assert result.window_sum("revenue", N, 300, T0 + 200) == TEN
    with pytest.raises(ValueError, match="whole number"):
        result.window_sum("pageviews", D, 90, T0)


def test_active_at_window_start_is_now_minus_activations_plus_churns() -> None:
    records = [purchase(T0), purchase(T0 + 4000, "cu2"), purchase(T0 + 4100)]
    result = truth(records, churn_after_s=3600)
    # why: now 2 active; the last 10 min saw 2 activations (T0+3960, T0+4080), 1 churn (T0+3600)
    assert result.active_at_window_start(N, 600, T0 + 4100) == 2 - 2 + 1
    assert result.active_at_window_start(N, 60, T0 + 4100) == 2 - 1  # why: only T0+4080's


def test_params_from_settings_follow_the_settings() -> None:
    settings = Settings(
        session_gap_s=900,
        currency_rates={"EUR": Decimal(1), "USD": Decimal("0.9")},
        purchase_event="order_completed",
    )
    params = TruthParams.from_settings(settings, now_s=NOW, final_watermark_s=LATER)
    assert params.session_gap_s == 900
    assert params.purchase_event == "order_completed"
    assert dict(params.rates) == {"EUR": Decimal(1), "USD": Decimal("0.9")}
    assert params.final_watermark_s == LATER
    result = ground_truth([pv(T0), pv(T0 + 900)], params)
    assert result.total("sessions") == 2
    converting = ground_truth([key_event(T0, "order_completed")], params)
    assert converting.total("converted_sessions") == 1


def test_purchase_event_defaults_to_the_settings_default() -> None:
    assert TruthParams(now_s=NOW).purchase_event == Settings().purchase_event == "purchase"
