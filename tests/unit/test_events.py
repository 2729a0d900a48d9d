"""Tests of the wire contract: models, channel derivation and parse()."""

from __future__ import annotations

import json
import random
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from pydantic import AwareDatetime, TypeAdapter, ValidationError

from streamkpi.events import (
    AdSpendEvent,
    Channel,
    EmailEvent,
    Event,
    Kind,
    OrderEvent,
    PageviewEvent,
    ParseContext,
    Reason,
    Rejection,
    SurveyEvent,
    derive_channel,
    parse,
)

NOW_S = 1_704_067_200.0  # 2024-01-01T00:00:00Z
CTX = ParseContext(rates={"EUR": Decimal(1), "USD": Decimal("0.9"), "JPY": Decimal("0.0062")})

BASE: dict[Kind, dict[str, Any]] = {
    Kind.pageviews: {"event_id": "e-1", "ts": "2024-01-01T00:00:00Z", "visitor_id": "v-1"},
    Kind.emails: {
        "event_id": "e-1",
        "ts": NOW_S,
        "campaign": "spring",
        "recipient_id": "r-1",
        "type": "opened",
    },
    Kind.orders: {
        "event_id": "e-1",
        "ts": NOW_S,
        "customer_id": "c-1",
        "type": "purchase",
        "amount": "10.00",
        "currency": "USD",
    },
    Kind.adspend: {
        "event_id": "e-1",
        "ts": NOW_S,
        "campaign": "spring",
        "channel": "paid",
        "cost": "100",
        "currency": "EUR",
    },
    Kind.surveys: {"event_id": "e-1", "ts": NOW_S, "respondent_id": "r-1", "score": 9},
}
_DROP = object()


def msg(kind: Kind, **fields: Any) -> bytes:
    """Return a valid message of ``kind`` with ``fields`` replaced (or dropped with _DROP)."""
    body = {**BASE[kind], **fields}
    # json, not orjson: tests need integers beyond 64 bits.
    return json.dumps({k: v for k, v in body.items() if v is not _DROP}).encode()


def accept(kind: Kind, raw: bytes, ctx: ParseContext = CTX) -> Any:
    """Parse ``raw`` and return the event, failing the test on a rejection."""
    result = parse(kind, raw, ctx, NOW_S)
    assert not isinstance(result, Rejection), result
    return result


def test_page_label_is_the_url_path_only() -> None:
    # #12 PII: a query string or fragment never reaches a label; a long query is no
    # reason to refuse the event either.
    raw = msg(Kind.pageviews, page="/reset?email=jane@example.com&token=s3cr3t" + "x" * 500)
    event = parse(Kind.pageviews, raw, CTX, NOW_S)
    assert isinstance(event, PageviewEvent)
    assert event.page == "/reset"
    event = parse(Kind.pageviews, msg(Kind.pageviews, page="/a#frag?x=1"), CTX, NOW_S)
    assert isinstance(event, PageviewEvent)
    assert event.page == "/a"


def test_ids_and_labels_at_their_bound_are_accepted() -> None:
    raw = msg(Kind.pageviews, event_id="e" * 256, campaign="c" * 200, page="/" + "p" * 199)
    event = parse(Kind.pageviews, raw, CTX, NOW_S)
    assert isinstance(event, PageviewEvent)
    raw = msg(Kind.pageviews, type="engagement", engaged_ms=86_400_000)
    assert isinstance(parse(Kind.pageviews, raw, CTX, NOW_S), PageviewEvent)


@pytest.mark.parametrize("kind", list(Kind))
def test_a_lowered_max_label_chars_refuses_longer_campaigns_and_pages(kind: Kind) -> None:
    ctx = ParseContext(rates=CTX.rates, max_label_chars=8)
    assert not isinstance(parse(kind, msg(kind, campaign="c" * 8), ctx, NOW_S), Rejection)
    refused = parse(kind, msg(kind, campaign="c" * 9), ctx, NOW_S)
    assert refused == Rejection(
        Reason.out_of_range, "field 'campaign': 9 chars, labels.max_label_chars is 8"
    )
    if kind is Kind.pageviews:  # the path is what counts: a query string is dropped first
        assert not isinstance(parse(kind, msg(kind, page="/1234567?q=x"), ctx, NOW_S), Rejection)
        refused = parse(kind, msg(kind, page="/12345678"), ctx, NOW_S)
        assert isinstance(refused, Rejection)
        assert refused.reason is Reason.out_of_range


@pytest.mark.parametrize("chars", [0, 201])
def test_max_label_chars_outside_1_to_200_is_refused(chars: int) -> None:
    with pytest.raises(ValueError, match=r"max_label_chars must be 1\.\.200"):
        ParseContext(max_label_chars=chars)


def reject(kind: Kind, raw: bytes, ctx: ParseContext = CTX) -> Rejection:
    """Parse ``raw`` and return the rejection, failing the test on an event."""
    result = parse(kind, raw, ctx, NOW_S)
    assert isinstance(result, Rejection), result
    return result


# --- the happy path of every topic --------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "model"),
    [
        (Kind.pageviews, PageviewEvent),
        (Kind.emails, EmailEvent),
        (Kind.orders, OrderEvent),
        (Kind.adspend, AdSpendEvent),
        (Kind.surveys, SurveyEvent),
    ],
)
def test_parse_returns_the_model_of_each_topic(kind: Kind, model: type[Event]) -> None:
    event = accept(kind, msg(kind))
    assert type(event) is model
    assert event.event_id == "e-1"
    assert event.ts_s == NOW_S


def test_pageview_defaults_to_page_view_and_fills_optional_fields_with_none() -> None:
    event = accept(Kind.pageviews, msg(Kind.pageviews))
    assert event.type == "page_view"
    assert (event.session_id, event.page, event.campaign, event.engaged_ms) == (None,) * 4
    assert event.channel is Channel.direct


def test_email_machine_open_defaults_to_false_and_keeps_bounce_kind() -> None:
    event = accept(Kind.emails, msg(Kind.emails, type="bounced", bounce_kind="hard"))
    assert (event.type, event.bounce_kind, event.machine_open) == ("bounced", "hard", False)
    assert accept(Kind.emails, msg(Kind.emails, machine_open=True)).machine_open is True


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    raw = msg(Kind.pageviews, app_version="9.1", nested={"a": [1, {"b": None}]}, x=1e300)
    event = accept(Kind.pageviews, raw)
    assert "app_version" not in event.model_dump()


def test_events_are_frozen() -> None:
    event = accept(Kind.pageviews, msg(Kind.pageviews))
    with pytest.raises(ValidationError):
        event.visitor_id = "someone-else"


# --- every reason parse can produce ------------------------------------------------------

REJECTIONS = [
    # (kind, raw, reason, substring of the detail)
    (Kind.pageviews, b"x" * 65_537, Reason.too_large, "65537 bytes"),  # why: size before JSON
    (Kind.pageviews, b"{not json", Reason.invalid_json, "Invalid JSON"),  # why: syntax error
    (Kind.pageviews, b'{"event_id": "\xff"}', Reason.invalid_json, "unicode"),  # why: not UTF-8
    (Kind.pageviews, b"", Reason.invalid_json, "EOF"),  # why: empty value
    (Kind.pageviews, b"[1, 2]", Reason.not_an_object, "an array"),  # why: JSON, wrong shape
    (Kind.pageviews, b"null", Reason.not_an_object, "null"),  # why: JSON null document
    (Kind.pageviews, b'"hello"', Reason.not_an_object, "a string"),  # why: bare string
    (Kind.pageviews, b"42", Reason.not_an_object, "a number"),  # why: bare number
    (
        Kind.pageviews,
        msg(Kind.pageviews, visitor_id=_DROP),
        Reason.missing_field,
        "'visitor_id'",
    ),  # why: required field absent
    (
        Kind.pageviews,
        msg(Kind.pageviews, ts=_DROP),
        Reason.missing_field,
        "'ts'",
    ),  # why: a missing ts is missing, not malformed
    (
        Kind.pageviews,
        msg(Kind.pageviews, type="engagement"),
        Reason.missing_field,
        "'engaged_ms'",
    ),  # why: engagement time is the point of an engagement hit
    (
        Kind.pageviews,
        msg(Kind.pageviews, type="key_event"),
        Reason.missing_field,
        "'name'",
    ),  # why: a key event without a name cannot count as a lead
    (
        Kind.orders,
        msg(Kind.orders, amount=_DROP),
        Reason.missing_field,
        "'amount' (required for purchase)",
    ),  # why: a purchase without amount would count revenue 0
    (
        Kind.orders,
        msg(Kind.orders, currency=_DROP),
        Reason.missing_field,
        "'currency'",
    ),  # why: an amount is meaningless without its currency
    (
        Kind.pageviews,
        msg(Kind.pageviews, visitor_id=12345),
        Reason.bad_type,
        "'visitor_id'",
    ),  # why: ids are strings, numbers are not coerced
    (
        Kind.emails,
        msg(Kind.emails, machine_open="yes"),
        Reason.bad_type,
        "'machine_open'",
    ),  # why: booleans are strict
    (
        Kind.pageviews,
        msg(Kind.pageviews, type="engagement", engaged_ms=1.5),
        Reason.bad_type,
        "'engaged_ms'",
    ),  # why: engagement time is whole milliseconds
    (
        Kind.orders,
        msg(Kind.orders, amount="ten"),
        Reason.bad_value,
        "'amount'",
    ),  # why: a string, the right JSON type for a decimal, whose value is no number (#12)
    (
        Kind.pageviews,
        msg(Kind.pageviews, event_id=""),
        Reason.bad_value,
        "'event_id'",
    ),  # why: an empty dedup key would merge all events
    (
        Kind.pageviews,
        msg(Kind.pageviews, type="click"),
        Reason.bad_value,
        "'type'",
    ),  # why: unknown event type
    (
        Kind.orders,
        msg(Kind.orders, amount="-1.00"),
        Reason.bad_value,
        "greater than or equal to 0",
    ),  # why: refunds carry a positive amount, their type says it is money back
    (
        Kind.orders,
        msg(Kind.orders, amount="NaN"),
        Reason.bad_value,
        "finite",
    ),  # why: NaN would poison every revenue sum
    (
        Kind.orders,
        msg(Kind.orders, amount="1e999999"),
        Reason.out_of_range,
        "'amount'",
    ),  # why: a valid Decimal that would overflow the conversion
    (
        Kind.pageviews,
        msg(Kind.pageviews, type="engagement", engaged_ms=2**64),
        Reason.out_of_range,
        "'engaged_ms'",
    ),  # why: the poison pill of #12, orjson cannot encode a state holding it
    (
        Kind.pageviews,
        msg(Kind.pageviews, type="engagement", engaged_ms=86_400_001),
        Reason.out_of_range,
        "'engaged_ms'",
    ),  # why: more than 24 h of engagement in one event; sums stay far from 2**63
    (
        Kind.pageviews,
        msg(Kind.pageviews, event_id="e" * 257),
        Reason.out_of_range,
        "'event_id'",
    ),  # why: ids are dedup keys in state chunks: bounded, 256 chars
    (
        Kind.orders,
        msg(Kind.orders, type="cart_created", cart_id="c" * 257),
        Reason.out_of_range,
        "'cart_id'",
    ),  # why: a cart id is a state key of the customer's entry
    (
        Kind.emails,
        msg(Kind.emails, campaign="c" * 201),
        Reason.out_of_range,
        "'campaign'",
    ),  # why: a label value: 200 chars at most, a 10 KB campaign would reach /metrics
    (
        Kind.pageviews,
        msg(Kind.pageviews, page="/" + "p" * 200),
        Reason.out_of_range,
        "'page'",
    ),  # why: a label value, checked after the query string is dropped
    (
        Kind.orders,
        b'{"event_id":"e","ts":1704067200,"customer_id":"c","type":"purchase",'
        b'"amount":NaN,"currency":"EUR"}',
        Reason.bad_value,
        "finite",
    ),  # why: a NaN literal (pydantic's parser reads it) would poison every revenue sum
    (
        Kind.orders,
        msg(Kind.orders, currency="dollars"),
        Reason.bad_value,
        "'currency'",
    ),  # why: not an ISO 4217 code at all
    (
        Kind.pageviews,
        msg(Kind.pageviews, ts="2024-01-01T00:00:00"),
        Reason.bad_ts,
        "timezone",
    ),  # why: naive time, the producer's zone is unknown
    (
        Kind.pageviews,
        msg(Kind.pageviews, ts="last tuesday"),
        Reason.bad_ts,
        "'ts'",
    ),  # why: garbage string
    (Kind.pageviews, msg(Kind.pageviews, ts=True), Reason.bad_ts, "true"),  # why: bool is no time
    (Kind.pageviews, msg(Kind.pageviews, ts=None), Reason.bad_ts, "null"),  # why: null is no time
    (
        Kind.pageviews,
        msg(Kind.pageviews, ts=10**20),
        Reason.bad_ts,
        "'ts'",
    ),  # why: beyond year 9999 even as milliseconds
    (
        Kind.pageviews,
        msg(Kind.pageviews, ts=NOW_S + 301),
        Reason.future_ts,
        "301 s ahead",
    ),  # why: beyond max_future_s of clock skew
    (
        Kind.orders,
        msg(Kind.orders, currency="GBP"),
        Reason.unknown_currency,
        "'GBP'",
    ),  # why: no configured rate: refuse rather than guess
    (
        Kind.adspend,
        msg(Kind.adspend, currency="CHF"),
        Reason.unknown_currency,
        "'CHF'",
    ),  # why: ad spend is converted like orders
    (Kind.surveys, msg(Kind.surveys, score=11), Reason.bad_score, "'score'"),  # why: above 10
    (Kind.surveys, msg(Kind.surveys, score=-1), Reason.bad_score, "'score'"),  # why: below 0
    (Kind.surveys, msg(Kind.surveys, score=8.5), Reason.bad_score, "'score'"),  # why: not whole
    (Kind.surveys, msg(Kind.surveys, score="9"), Reason.bad_score, "'score'"),  # why: strict int
    (
        Kind.surveys,
        msg(Kind.surveys, score=_DROP),
        Reason.missing_field,
        "'score'",
    ),  # why: missing wins over bad_score
    (
        Kind.pageviews,
        msg(Kind.pageviews, channel="Paid Search"),
        Reason.bad_channel,
        "'paid search'",
    ),  # why: GA4 group names are not our channels; folding them into other would hide it
    (
        Kind.adspend,
        msg(Kind.adspend, channel=7),
        Reason.bad_channel,
        "'channel'",
    ),  # why: wrong type on channel is still a channel problem
    (
        "clicks",
        msg(Kind.pageviews),
        Reason.unknown_topic,
        "'clicks'",
    ),  # why: a topic kind parse does not know
]


@pytest.mark.parametrize(("kind", "raw", "reason", "detail"), REJECTIONS)
def test_parse_rejects_with_the_reason_and_names_the_field(
    kind: Kind, raw: bytes, reason: Reason, detail: str
) -> None:
    rejection = reject(kind, raw)
    assert rejection.reason is reason
    assert detail in rejection.detail
    assert len(rejection.detail) <= 200


def test_every_reason_except_the_engines_is_covered_by_the_table() -> None:
    covered = {row[2] for row in REJECTIONS}
    assert covered == set(Reason) - {Reason.late, Reason.duplicate}


def test_size_limit_is_inclusive_and_checked_before_decoding() -> None:
    raw = msg(Kind.pageviews)
    assert accept(Kind.pageviews, raw, ParseContext(max_bytes=len(raw)))
    too_small = ParseContext(max_bytes=len(raw) - 1)
    assert reject(Kind.pageviews, raw, too_small).reason is Reason.too_large
    assert reject(Kind.pageviews, b"\xff" * 100, ParseContext(max_bytes=10)).reason is (
        Reason.too_large
    )


def test_tombstone_without_value_is_invalid_json() -> None:
    rejection = parse(Kind.pageviews, None, CTX, NOW_S)  # type: ignore[call-overload]
    assert rejection == Rejection(Reason.invalid_json, "message value is NoneType, not bytes")


def test_detail_never_echoes_a_large_value() -> None:
    rejection = reject(Kind.surveys, msg(Kind.surveys, score="9" * 50_000))
    assert rejection.reason is Reason.bad_score
    assert len(rejection.detail) <= 200


def test_first_error_in_field_order_decides_the_reason() -> None:
    raw = msg(Kind.pageviews, ts="nope", visitor_id=_DROP)
    assert reject(Kind.pageviews, raw).reason is Reason.bad_ts


# --- event time --------------------------------------------------------------------------

TS_ACCEPTED = [
    ("2024-01-01T00:00:00Z", 1_704_067_200.0),  # why: RFC 3339 UTC with Z
    ("2024-01-01T02:00:00+02:00", 1_704_067_200.0),  # why: offset is applied, same instant
    ("2023-12-31T19:00:00-05:00", 1_704_067_200.0),  # why: negative offset
    ("2024-01-01T00:00:00.250Z", 1_704_067_200.25),  # why: fractional seconds
    ("2024-01-01T00:00:00.123456789Z", 1_704_067_200.123456),  # why: truncated to microseconds
    ("2024-01-01 00:00:00Z", 1_704_067_200.0),  # why: RFC 3339 allows a space for T
    ("1704067200", 1_704_067_200.0),  # why: numeric strings are epoch numbers too
    (1_704_067_200, 1_704_067_200.0),  # why: epoch seconds int
    (1_704_067_199.5, 1_704_067_199.5),  # why: epoch seconds float
    (1_704_067_200_123, 1_704_067_200.123),  # why: epoch milliseconds (> 2e10)
    (20_000_000_000, 20_000_000_000.0),  # why: exactly 2e10 is still seconds (year 2603)
    (20_000_000_001, 20_000_000.001),  # why: just above 2e10 is milliseconds
    (0, 0.0),  # why: the epoch itself is a time; lateness is the engine's business
]


@pytest.mark.parametrize(("ts", "ts_s"), TS_ACCEPTED)
def test_accepted_ts_forms_give_exact_epoch_seconds(ts: Any, ts_s: float) -> None:
    far_future = ParseContext(max_future_s=1e12)
    event = accept(Kind.pageviews, msg(Kind.pageviews, ts=ts), far_future)
    assert event.ts_s == ts_s


@pytest.mark.parametrize(
    "number",
    [
        0,
        1,
        -1,
        1_704_067_200,
        1_704_067_200.5,
        1_704_067_200_123,
        20_000_000_000,
        20_000_000_001,
        -20_000_000_000,
        -20_000_000_001,
        253_402_300_799,  # why: last second of 9999 as seconds
        253_402_300_799_000,  # why: and as milliseconds
    ],
)
def test_epoch_numbers_follow_pydantics_own_seconds_or_milliseconds_rule(number: float) -> None:
    # parse keeps numbers as floats for speed; this pins it to pydantic-core's datetime rule.
    as_datetime = TypeAdapter(AwareDatetime).validate_json(json.dumps(number))
    event = accept(Kind.pageviews, msg(Kind.pageviews, ts=number), ParseContext(max_future_s=1e13))
    assert event.ts_s == pytest.approx(as_datetime.timestamp(), abs=1e-6)


def test_future_limit_is_inclusive() -> None:
    assert accept(Kind.pageviews, msg(Kind.pageviews, ts=NOW_S + 300))
    assert reject(Kind.pageviews, msg(Kind.pageviews, ts=NOW_S + 300.5)).reason is (
        Reason.future_ts
    )


def test_ts_serializes_back_as_epoch_seconds_under_its_wire_name() -> None:
    event = accept(Kind.pageviews, msg(Kind.pageviews))
    assert orjson.loads(event.model_dump_json(by_alias=True))["ts"] == NOW_S


# --- channels ----------------------------------------------------------------------------

CHANNELS = [
    # (utm_medium, utm_source, referrer, channel)
    ("cpc", "google", None, Channel.paid),  # why: paid search
    ("CPC ", None, None, Channel.paid),  # why: case and blanks are normalized
    ("cpm", None, None, Channel.paid),  # why: GA4's .*cp.* rule
    ("ppc", None, None, Channel.paid),  # why: explicit pay-per-click
    ("paid_social", "facebook", None, Channel.paid),  # why: paid.* beats a social source
    ("display", None, None, Channel.paid),  # why: display folds into paid
    ("email", None, None, Channel.email),  # why: email medium
    ("e-mail", None, None, Channel.email),  # why: GA4 spelling variant
    ("newsletter", None, None, Channel.email),  # why: common newsletter tagging
    ("social", None, None, Channel.social),  # why: social medium
    ("sm", None, None, Channel.social),  # why: GA4 short form
    ("social-network", None, None, Channel.social),  # why: GA4 variant
    ("organic", None, None, Channel.organic),  # why: organic medium
    ("referral", None, None, Channel.referral),  # why: referral medium
    ("affiliate", None, None, Channel.other),  # why: a GA4 group we fold into other
    ("banana", None, "https://www.google.com/", Channel.other),  # why: unknown medium
    ("banana", "google", None, Channel.organic),  # why: search source beats unknown medium
    (None, "google", None, Channel.organic),  # why: source alone names a search engine
    (None, "facebook.com", None, Channel.social),  # why: source with a domain
    (None, "x", None, Channel.social),  # why: X's short source name
    (None, "newsletter", None, Channel.email),  # why: email source without medium
    (None, "partner-site", None, Channel.other),  # why: GA4 "Unassigned"
    (None, None, "https://www.google.com/search?q=shoes", Channel.organic),  # why: search host
    (None, None, "https://www.google.co.uk/", Channel.organic),  # why: country domain
    (None, None, "https://duckduckgo.com/", Channel.organic),  # why: another engine
    (None, None, "https://www.bing.com/search", Channel.organic),  # why: another engine
    (None, None, "https://t.co/abc", Channel.social),  # why: Twitter's shortener
    (None, None, "https://x.com/someone", Channel.social),  # why: X
    (None, None, "https://l.facebook.com/l.php", Channel.social),  # why: facebook link shim
    (None, None, "https://www.linkedin.com/", Channel.social),  # why: social host
    (None, None, "https://user:pw@news.ycombinator.com:443/item", Channel.referral),  # why: host
    (None, None, "https://max.com/", Channel.referral),  # why: x.com matches labels, not text
    (None, None, "HTTPS://WWW.GOOGLE.COM/", Channel.organic),  # why: hosts are case-blind
    (None, None, "google.com/search", Channel.organic),  # why: scheme-less referrer
    (None, None, "", Channel.direct),  # why: empty referrer is no referrer
    (None, None, None, Channel.direct),  # why: nothing at all
    ("(none)", "(direct)", None, Channel.direct),  # why: GA4's own spelling of direct
    ("(not set)", None, "https://example.com/", Channel.referral),  # why: placeholder medium
]


@pytest.mark.parametrize(("medium", "source", "referrer", "channel"), CHANNELS)
def test_derive_channel_follows_simplified_ga4_grouping(
    medium: str | None, source: str | None, referrer: str | None, channel: Channel
) -> None:
    assert derive_channel(medium, source, referrer) is channel


@pytest.mark.parametrize(
    ("given", "channel"),
    [
        (_DROP, Channel.paid),  # why: absent, derived from utm_medium=cpc
        (None, Channel.paid),  # why: null is absent
        ("", Channel.paid),  # why: empty is absent
        ("  ", Channel.paid),  # why: blank is absent
        ("Email", Channel.email),  # why: given channels are lowercased, not re-derived
        (" social ", Channel.social),  # why: and stripped
    ],
)
def test_pageview_channel_is_given_or_derived(given: Any, channel: Channel) -> None:
    raw = msg(Kind.pageviews, channel=given, utm_medium="cpc")
    assert accept(Kind.pageviews, raw).channel is channel


def test_order_channel_is_optional_and_never_derived() -> None:
    assert accept(Kind.orders, msg(Kind.orders)).channel is None
    assert accept(Kind.orders, msg(Kind.orders, channel="EMAIL")).channel is Channel.email


# --- money -------------------------------------------------------------------------------

AMOUNTS = [
    # (amount, currency, amount, amount_reporting)
    ("10.00", "USD", Decimal("10.00"), Decimal("9.000")),  # why: exact Decimal arithmetic
    (10.5, "USD", Decimal("10.5"), Decimal("9.45")),  # why: JSON number, shortest repr kept
    (0.1, "EUR", Decimal("0.1"), Decimal("0.1")),  # why: no binary float noise
    (3, "EUR", Decimal("3"), Decimal("3")),  # why: integer, reporting currency at rate 1
    ("1000", "jpy", Decimal("1000"), Decimal("6.2000")),  # why: currency code uppercased
    ("0", "USD", Decimal("0"), Decimal("0.0")),  # why: a free order is an order
]


@pytest.mark.parametrize(("amount", "currency", "parsed", "reporting"), AMOUNTS)
def test_order_amount_is_converted_exactly(
    amount: Any, currency: str, parsed: Decimal, reporting: Decimal
) -> None:
    event = accept(Kind.orders, msg(Kind.orders, amount=amount, currency=currency))
    assert event.amount == parsed
    assert str(event.amount) == str(parsed)
    assert event.amount_reporting == reporting
    assert str(event.amount_reporting) == str(reporting)


def test_order_without_amount_needs_no_currency_outside_purchase_and_refund() -> None:
    event = accept(Kind.orders, msg(Kind.orders, type="cart_created", amount=_DROP, currency=_DROP))
    assert (event.amount, event.currency, event.amount_reporting) == (None, None, None)


def test_refund_needs_an_amount_too() -> None:
    raw = msg(Kind.orders, type="refund", amount=_DROP)
    assert reject(Kind.orders, raw).detail == "missing field 'amount' (required for refund)"


def test_adspend_cost_is_converted_like_amounts() -> None:
    event = accept(Kind.adspend, msg(Kind.adspend, cost="250.00", currency="USD"))
    assert event.cost_reporting == Decimal("225.0000")


def test_producer_cannot_inject_the_reporting_amount() -> None:
    raw = msg(Kind.orders, amount_reporting="999999", cost_reporting="garbage")
    assert accept(Kind.orders, raw).amount_reporting == Decimal("9.000")


def test_models_built_without_parse_keep_a_given_reporting_amount() -> None:
    order = OrderEvent(
        event_id="e",
        ts=NOW_S,
        customer_id="c",
        type="purchase",
        amount=Decimal(5),
        currency="EUR",
        amount_reporting=Decimal(5),
    )
    assert order.amount_reporting == Decimal(5)


def test_parse_context_adds_the_reporting_currency_and_freezes_rates() -> None:
    rates = {"USD": Decimal("0.9")}
    ctx = ParseContext(rates=rates)
    rates["GBP"] = Decimal("1.2")
    assert dict(ctx.rates) == {"USD": Decimal("0.9"), "EUR": Decimal(1)}
    with pytest.raises(TypeError):
        ctx.rates["GBP"] = Decimal("1.2")  # type: ignore[index]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rates": {"usd": Decimal(1)}},  # why: codes are upper-case ISO 4217
        {"rates": {"USD": Decimal(0)}},  # why: a zero rate would erase revenue
        {"rates": {"USD": Decimal("NaN")}},  # why: NaN would poison sums
        {"rates": {"USD": 0.9}},  # why: floats are not exact rates
        {"rates": {"EUR": Decimal(2)}},  # why: the reporting currency converts at 1
        {"reporting_currency": "euro"},  # why: not an ISO 4217 code
    ],
)
def test_parse_context_refuses_bad_rates_at_startup(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"ISO 4217|rate"):
        ParseContext(**kwargs)


# --- never raises ------------------------------------------------------------------------


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(9 if depth < 4 else 6)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.randint(-(10**20), 10**20)
    if choice == 3:
        return rng.uniform(-1e15, 1e15)
    if choice == 4:
        return "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randrange(12)))
    if choice == 5:
        return rng.choice(["", "2024-01-01T00:00:00Z", "USD", "paid", "purchase", "-1", "1e9"])
    if choice == 6:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = [*BASE[Kind.orders], "score", "channel", "type", "engaged_ms", "name", "x"]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randrange(6))}


def _fuzz_inputs(rng: random.Random) -> list[bytes]:
    valid = [msg(kind) for kind in Kind]
    specials = [
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b'{"ts": NaN}',
        b'{"ts": Infinity, "event_id": "e"}',
        b"[" * 5000,
        b'{"a":' * 3000,
        b"9" * 5000,
        b'{"x": ' + b"9" * 5000 + b"}",
        b'{"ts": 1e999999}',
        b"\xef\xbb\xbf{}",
        b"\x00",
        b"null",
        b"true",
        b'"string"',
        b"[]",
        b"{}",
    ]
    inputs = list(specials)
    for _ in range(1500):
        inputs.append(bytes(rng.randrange(256) for _ in range(rng.randrange(40))))
    for _ in range(1500):
        base = bytearray(rng.choice(valid))
        for _ in range(rng.randrange(1, 4)):
            base[rng.randrange(len(base))] = rng.randrange(256)
        inputs.append(bytes(base[: rng.randrange(len(base) + 1)]))
    for _ in range(1500):
        body = rng.choice([dict(BASE[rng.choice(list(Kind))]), {}])
        extra = _random_json(rng)
        if isinstance(extra, dict):
            body.update(extra)
        if rng.random() < 0.8:
            body[rng.choice(list(body) or ["x"])] = _random_json(rng)
        inputs.append(json.dumps(body).encode())
    return inputs


def test_parse_never_raises_on_garbage() -> None:
    rng = random.Random(20240101)
    small = ParseContext(max_bytes=4096)
    outcomes: set[Reason | str] = set()
    for raw in _fuzz_inputs(rng):
        for kind in Kind:
            result = parse(kind, raw, small, NOW_S)
            if isinstance(result, Rejection):
                assert not result.detail.startswith("internal error"), (raw, result)
                assert len(result.detail) <= 200
                outcomes.add(result.reason)
            else:
                assert isinstance(result.ts_s, float)
                outcomes.add("accepted")
    assert {"accepted", Reason.invalid_json, Reason.missing_field, Reason.bad_type} <= outcomes


def test_parse_accepts_str_and_bytearray_like_bytes() -> None:
    raw = msg(Kind.pageviews)
    event = accept(Kind.pageviews, raw)
    assert accept(Kind.pageviews, bytearray(raw)) == event  # type: ignore[arg-type]
    assert accept(Kind.pageviews, raw.decode()) == event  # type: ignore[arg-type]


def test_parse_result_epoch_matches_datetime_arithmetic() -> None:
    event = accept(Kind.pageviews, msg(Kind.pageviews, ts="2023-12-31T23:59:59.5+14:00"))
    expected = datetime.fromisoformat("2023-12-31T23:59:59.5+14:00").timestamp()
    assert event.ts_s == expected


def test_pageview_built_directly_derives_its_channel_like_parse() -> None:
    event = PageviewEvent(event_id="e", ts=NOW_S, visitor_id="v", utm_medium="Newsletter")
    assert event.channel is Channel.email
