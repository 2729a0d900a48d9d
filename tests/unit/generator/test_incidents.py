"""Incident specs: parsing (with clear errors) and what an active incident does to an event."""

from __future__ import annotations

from typing import Any

import pytest

from streamkpi.events import Kind
from streamkpi.generator.incidents import (
    Incident,
    IncidentError,
    IncidentKind,
    alter,
    parse_duration_s,
    parse_incident,
)

DROP = IncidentKind.deliverability_drop
CONV = IncidentKind.conversion_drop
STOP = IncidentKind.traffic_stop


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        # the example
        (
            "deliverability-drop:campaign=spring_sale:at=+5m:for=10m",
            Incident(DROP, "spring_sale", 300.0, 600.0, 0.5),
        ),
        # bare kind: from the start, for ever, every campaign, the kind's default severity
        ("conversion-drop", Incident(CONV, None, 0.0, None, 0.8)),
        ("traffic-stop", Incident(STOP, None, 0.0, None, 1.0)),
        # at without "+", compound durations, keys in any order
        ("traffic-stop:for=1h30m:at=90s", Incident(STOP, None, 90.0, 5400.0, 1.0)),
        # severity as a fraction or a percentage
        ("conversion-drop:severity=0.25", Incident(CONV, None, 0.0, None, 0.25)),
        ("conversion-drop:severity=40%", Incident(CONV, None, 0.0, None, 0.4)),
        # surrounding spaces are forgiven (shell quoting accidents)
        (" traffic-stop : campaign = x ", Incident(STOP, "x", 0.0, None, 1.0)),
        # the kinds of #11, with their defaults and own keys
        ("checkout-broken", Incident(IncidentKind.checkout_broken, None, 0.0, None, 1.0)),
        (
            "landing-broken:page=/pricing:at=+1h",
            Incident(IncidentKind.landing_broken, None, 3600.0, None, 1.0, "/pricing"),
        ),
        (
            "ad-overspend:campaign=x:factor=8x",
            Incident(IncidentKind.ad_overspend, "x", 0.0, None, 1.0, factor=8.0),
        ),
        ("nps-drop", Incident(IncidentKind.nps_drop, None, 0.0, None, 0.5)),
        # a zero needs no unit
        ("traffic-stop:at=0", Incident(STOP, None, 0.0, None, 1.0)),
    ],
)
def test_parse_incident(spec: str, expected: Incident) -> None:
    assert parse_incident(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("outage", "unknown incident kind 'outage' (one of: deliverability-drop"),  # typo'd kind
        ("", "unknown incident kind ''"),  # nothing at all
        ("traffic-stop:campaign", "'campaign' is not key=value"),  # forgotten value
        ("traffic-stop:when=5m", "unknown key 'when' (keys: campaign, page, at, for, severity"),
        ("traffic-stop:at=1m:at=2m", "at given twice"),  # ambiguous
        ("traffic-stop:at=5 minutes", "bad duration '5 minutes'"),  # unit spelled out
        ("traffic-stop:for=0s", "for must be positive"),  # an empty interval
        ("traffic-stop:at=-5m", "bad duration '-5m'"),  # before the start
        ("traffic-stop:campaign=", "campaign must not be empty"),
        ("conversion-drop:severity=2", "severity must be in (0, 1]"),
        ("conversion-drop:severity=0", "severity must be in (0, 1]"),
        ("conversion-drop:severity=high", "bad severity 'high'"),
        # seconds or minutes? a duration must say
        ("traffic-stop:for=10", "for=10 has no unit: write 10s, 10m or 10h"),
        ("traffic-stop:at=+5", "at=5 has no unit"),
        ("traffic-stop::for=1m", "empty option"),
        ("landing-broken:page=pricing", "page must be a path starting with '/'"),
        ("traffic-stop:page=/", "page= is for landing-broken, not traffic-stop"),
        ("nps-drop:factor=3", "factor= is for ad-overspend, not nps-drop"),
        ("ad-overspend:factor=1", "factor must be in (1, 1000]"),
        ("ad-overspend:factor=lots", "bad factor 'lots'"),
    ],
)
def test_parse_incident_refuses_with_a_clear_message(spec: str, message: str) -> None:
    with pytest.raises(IncidentError) as excinfo:
        parse_incident(spec)
    assert message in str(excinfo.value)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),  # a bare number is seconds
        ("90s", 90.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("2d", 172_800.0),
        ("1.5h", 5400.0),
        ("500ms", 0.5),
    ],
)
def test_parse_duration_s(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "5x", "5m3", "m5", "1h 30m"])
def test_parse_duration_s_refuses_garbage(text: str) -> None:
    with pytest.raises(IncidentError):
        parse_duration_s(text)


def test_describe_round_trips() -> None:
    for spec in (
        "deliverability-drop:campaign=spring_sale:at=+5m:for=10m",
        "traffic-stop:at=90s",
        "conversion-drop:severity=0.3:for=1h",
        "landing-broken:campaign=spring_sale:page=/:for=30m",
        "ad-overspend:factor=2.5",
        "nps-drop:severity=0.9",
    ):
        incident = parse_incident(spec)
        assert parse_incident(incident.describe()) == incident


def test_active_from_at_for_for() -> None:
    incident = parse_incident("traffic-stop:at=+5m:for=10m")
    assert [incident.active(t) for t in (299.9, 300.0, 899.9, 900.0)] == [
        False,
        True,
        True,
        False,
    ]
    assert parse_incident("traffic-stop:at=+5m").active(10**9)  # no end


def _alter(incident: str, kind: Kind, fields: dict[str, Any], **kw: Any) -> dict[str, Any] | None:
    args: dict[str, Any] = {"elapsed_s": 60.0, "campaign": fields.get("campaign"), "entity": "e1"}
    return alter([parse_incident(incident)], kind, fields, **(args | kw))


DELIVERED = {"campaign": "spring_sale", "recipient_id": "r1", "type": "delivered"}


def test_deliverability_drop_turns_deliveries_into_hard_bounces() -> None:
    spec = "deliverability-drop:campaign=spring_sale:severity=1"
    assert _alter(spec, Kind.emails, DELIVERED) == DELIVERED | {
        "type": "bounced",
        "bounce_kind": "hard",
    }
    opened = DELIVERED | {"type": "opened", "machine_open": False}
    assert _alter(spec, Kind.emails, opened) is None  # nothing arrived: nothing is read
    sent = DELIVERED | {"type": "sent"}
    assert _alter(spec, Kind.emails, sent) == sent  # the sends go on: the ratio collapses
    other = DELIVERED | {"campaign": "black_friday"}
    assert _alter(spec, Kind.emails, other) == other  # another campaign
    assert _alter(spec, Kind.emails, DELIVERED, elapsed_s=-1.0) == DELIVERED  # not yet
    pageview = {"visitor_id": "v1", "campaign": "spring_sale"}
    assert _alter(spec, Kind.pageviews, pageview) == pageview  # not an e-mail


def test_conversion_drop_loses_key_events_and_purchases_of_the_campaign() -> None:
    spec = "conversion-drop:campaign=brand_search:severity=1"
    key_event = {"visitor_id": "v1", "type": "key_event", "name": "signup"}
    # A key event carries no campaign: the caller passes its visit's.
    assert _alter(spec, Kind.pageviews, key_event, campaign="brand_search") is None
    assert _alter(spec, Kind.pageviews, key_event, campaign="spring_sale") == key_event
    purchase = {"customer_id": "c1", "type": "purchase", "campaign": "brand_search"}
    assert _alter(spec, Kind.orders, purchase) is None
    cart = purchase | {"type": "cart_created"}
    assert _alter(spec, Kind.orders, cart) == cart  # carts are still created: abandoned later
    page = {"visitor_id": "v1", "campaign": "brand_search"}
    assert _alter(spec, Kind.pageviews, page) == page  # the traffic itself goes on


def test_traffic_stop_without_campaign_stops_everything() -> None:
    for kind, fields in [
        (Kind.pageviews, {"visitor_id": "v1"}),
        (Kind.emails, DELIVERED),
        (Kind.adspend, {"campaign": "x", "channel": "paid", "cost": "1", "currency": "EUR"}),
        (Kind.surveys, {"respondent_id": "n1", "score": 9}),
    ]:
        assert _alter("traffic-stop", kind, fields) is None


def test_severity_hits_that_share_of_entities_always_the_same_ones() -> None:
    incident = parse_incident("deliverability-drop:severity=0.3")
    hit = [incident.hits("c", f"r{i}") for i in range(10_000)]
    assert 0.28 < sum(hit) / len(hit) < 0.32
    assert hit == [incident.hits("c", f"r{i}") for i in range(10_000)]  # stable per entity
