"""What each incident of #11 does to the live stream, computed from the generated events.

Every test generates the same live traffic twice, without and with the incident: an
incident only alters or drops events (its draws are hash-based, the simulation's random
draws are untouched), so the healthy twin says what the events would have been.
"""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner

from streamkpi.events import Kind
from streamkpi.generator.cli import generate
from streamkpi.generator.incidents import IncidentError, parse_incident
from streamkpi.generator.live import LiveConfig, LiveGenerator

ORIGIN_S = 1_764_158_400.0  # 2025-11-26T12:00:00Z
DURATION_S = 80 * 60.0
AT_S, FOR_S = 1200.0, 2400.0  # the incidents' interval: [+20m, +1h)
SITE = "https://shop.example.com"

Event = tuple[Kind, dict[str, Any]]


def _events(*incidents: str, rate: float = 8.0) -> list[Event]:
    config = LiveConfig(
        rate=rate,
        partitions=1,
        warmup_s=0,
        incidents=tuple(parse_incident(spec) for spec in incidents),
    )
    records = LiveGenerator(config, ORIGIN_S, DURATION_S).advance(ORIGIN_S + DURATION_S)
    out = []
    for record in records:
        payload = json.loads(record.value)
        payload["ts"] = _ts_s(payload["ts"])
        del payload["event_id"]  # numbered in production order: differs once one is lost
        out.append((record.kind, payload))
    return out


def _ts_s(ts: str | int | float) -> float:
    from datetime import datetime

    if isinstance(ts, str):
        return datetime.fromisoformat(ts).timestamp()
    return ts / 1000 if isinstance(ts, int) else ts


def _during(event: Event) -> bool:
    return ORIGIN_S + AT_S <= event[1]["ts"] < ORIGIN_S + AT_S + FOR_S


def _key(event: Event) -> str:
    return f"{event[0].value}|{json.dumps(event[1], sort_keys=True)}"


@pytest.fixture(scope="module")
def healthy() -> list[Event]:
    return _events()


def _incident(spec: str) -> str:
    return f"{spec}:at=+{AT_S:g}s:for={FOR_S:g}s"


def _only_dropped(healthy: list[Event], sick: list[Event]) -> list[Event]:
    """Assert ``sick`` is ``healthy`` less some events; return those lost."""
    lost = Counter(map(_key, healthy))
    lost.subtract(map(_key, sick))
    assert min(lost.values()) >= 0, "the incident added events"
    by_key = {_key(e): e for e in healthy}
    return [by_key[k] for k, n in lost.items() for _ in range(n)]


def test_checkout_broken_stops_the_campaigns_purchases_and_keeps_its_carts(
    healthy: list[Event],
) -> None:
    sick = _events(_incident("checkout-broken:campaign=brand_search"))
    lost = _only_dropped(healthy, sick)

    def orders(events: list[Event], kind: str) -> int:
        return sum(
            1
            for e in events
            if e[0] is Kind.orders
            and e[1]["type"] == kind
            and e[1].get("campaign") == "brand_search"
            and _during(e)
        )

    assert orders(healthy, "purchase") >= 30  # there was something to stop
    assert orders(sick, "purchase") == 0
    assert orders(sick, "cart_created") == orders(healthy, "cart_created") > 0
    # Only purchases, refunds and purchase key events are lost, only during the incident.
    assert {(e[0], e[1].get("type"), e[1].get("name")) for e in lost} <= {
        (Kind.orders, "purchase", None),
        (Kind.orders, "refund", None),
        (Kind.pageviews, "key_event", "purchase"),
    }
    assert all(_during(e) for e in lost)
    assert any(e[0] is Kind.pageviews for e in lost)  # the visits' purchase key events too
    # Revenue of the campaign in the interval: zero, from a healthy positive sum.
    revenue = [
        sum(
            Decimal(str(e[1]["amount"]))
            for e in events
            if e[0] is Kind.orders
            and e[1]["type"] == "purchase"
            and _during(e)
            and e[1].get("campaign") == "brand_search"
        )
        for events in (healthy, sick)
    ]
    assert revenue[0] > 0
    assert revenue[1] == 0


def _landing_hits(events: list[Event]) -> list[Event]:
    """Pageviews that start a visit: no referrer from the site itself."""
    return [
        e
        for e in events
        if e[0] is Kind.pageviews
        and e[1].get("type", "page_view") == "page_view"
        and not str(e[1].get("referrer", "")).startswith(SITE)
    ]


def _followed(events: list[Event], page: str) -> tuple[int, int]:
    """Return (landing hits on ``page`` during the incident, those the visit goes on after)."""
    by_visitor: dict[str, list[float]] = {}
    for e in events:
        if e[0] is Kind.pageviews:
            by_visitor.setdefault(e[1]["visitor_id"], []).append(e[1]["ts"])
    hits = [e for e in _landing_hits(events) if e[1].get("page") == page and _during(e)]
    # A visit's next event comes within 200 s; the visitor's next visit 45 min later.
    went_on = sum(
        1 for e in hits if any(0 < t - e[1]["ts"] <= 200 for t in by_visitor[e[1]["visitor_id"]])
    )
    return len(hits), went_on


def test_landing_broken_leaves_the_pages_visits_at_their_landing_hit(
    healthy: list[Event],
) -> None:
    sick = _events(_incident("landing-broken:page=/pricing"))
    lost = _only_dropped(healthy, sick)
    hits, went_on = _followed(healthy, "/pricing")
    assert hits >= 100
    assert went_on / hits > 0.4
    sick_hits, sick_went_on = _followed(sick, "/pricing")
    assert (sick_hits, sick_went_on) == (hits, 0)  # every landing hit kept, nothing after
    assert _followed(sick, "/") == _followed(healthy, "/")  # other landing pages untouched
    assert {e[0] for e in lost} <= {Kind.pageviews, Kind.orders}


def test_landing_broken_by_campaign_bounces_only_that_campaigns_visits(
    healthy: list[Event],
) -> None:
    sick = _events(_incident("landing-broken:campaign=influencer_x"))
    lost = _only_dropped(healthy, sick)
    assert lost
    lost_landings = [e for e in _landing_hits(lost)]
    assert lost_landings == []  # the landing hits themselves arrive
    # The lost pageviews are later pages of visits: their referrer is the site.
    pages = [
        e for e in lost if e[0] is Kind.pageviews and e[1].get("type", "page_view") == "page_view"
    ]
    assert pages
    assert all(str(e[1]["referrer"]).startswith(SITE) for e in pages)
    # Orders lost carry the campaign (its visitors' carts): none of another campaign.
    assert {e[1].get("campaign") for e in lost if e[0] is Kind.orders} <= {"influencer_x"}


def test_ad_overspend_multiplies_the_campaigns_spend_by_the_factor(
    healthy: list[Event],
) -> None:
    sick = _events(_incident("ad-overspend:campaign=retargeting_q4:factor=5"))

    def spend(events: list[Event], campaign: str) -> tuple[Decimal, Decimal]:
        during = Decimal(0)
        outside = Decimal(0)
        for e in events:
            if e[0] is Kind.adspend and e[1]["campaign"] == campaign:
                cost = Decimal(str(e[1]["cost"]))
                if _during(e):
                    during += cost
                else:
                    outside += cost
        return during, outside

    healthy_during, healthy_outside = spend(healthy, "retargeting_q4")
    sick_during, sick_outside = spend(sick, "retargeting_q4")
    assert healthy_during > 0
    assert sick_during == 5 * healthy_during  # costs are whole cents: exact
    assert sick_outside == healthy_outside
    assert spend(sick, "spring_sale") == spend(healthy, "spring_sale")
    assert len(sick) == len(healthy)  # nothing lost, only costs changed


def _nps(events: list[Event]) -> float:
    scores = [e[1]["score"] for e in events if e[0] is Kind.surveys and _during(e)]
    promoters = sum(1 for s in scores if s >= 9)
    detractors = sum(1 for s in scores if s <= 6)
    return 100 * (promoters - detractors) / len(scores)


def test_nps_drop_turns_the_share_of_answers_into_detractors(healthy: list[Event]) -> None:
    sick = _events(_incident("nps-drop:severity=0.5"))
    assert len(sick) == len(healthy)
    assert _nps(healthy) > 0  # the generator's weights give +14
    # Half the answers become detractors: 0.4 x 0.5 - (0.26 x 0.5 + 0.5) = -43 (about).
    assert -60 < _nps(sick) < -25
    changed = [
        (a[1]["score"], b[1]["score"])
        for a, b in zip(healthy, sick, strict=True)
        if a[0] is Kind.surveys and a[1]["score"] != b[1]["score"]
    ]
    assert changed
    assert all(old > 6 >= new for old, new in changed)
    everything = _events("nps-drop:severity=1")
    assert all(e[1]["score"] <= 6 for e in everything if e[0] is Kind.surveys)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("traffic-stop:for=10", "for=10 has no unit"),
        ("checkout-broken:campaign=spring", "unknown campaign 'spring' (campaigns: spring_sale"),
        (
            "deliverability-drop:campaign=brand_search",
            "campaign 'brand_search' sends no e-mail (e-mail campaigns: spring_sale, "
            "black_friday, webinar_ai)",
        ),
    ],
)
def test_generate_refuses_an_incident_that_cannot_mean_anything(spec: str, message: str) -> None:
    result = CliRunner().invoke(generate, ["--incident", spec, "--duration", "1s"])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_live_config_refuses_an_unknown_campaign() -> None:
    with pytest.raises(IncidentError, match="unknown campaign 'nope'"):
        LiveConfig(incidents=(parse_incident("ad-overspend:campaign=nope"),))
