"""KPI arithmetic for /kpis and snapshots: sum first, divide last, no value on empty."""

from __future__ import annotations

from decimal import Decimal

import pytest

from streamkpi.kpis.spec import Labels, kpi
from streamkpi.kpis.values import kpi_value, kpi_values, report


@pytest.mark.parametrize(
    ("name", "components", "expected"),
    [
        # why: the denominator sums both outcomes: 15 / (15 + 25)
        ("bounce_rate", {"bounced_sessions": 15, "engaged_sessions": 25, "sessions": 99}, 0.375),
        # why: engaged sessions but no bounced series at all -> 0, not missing
        ("bounce_rate", {"engaged_sessions": 40}, 0.0),
        # why: sessions started but none decided yet: no value
        ("bounce_rate", {"sessions": 40}, None),
        ("bounce_rate", {"bounced_sessions": 3}, 1.0),
        # why: an empty denominator has no value (never NaN or a division error)
        ("bounce_rate", {"bounced_sessions": 0, "engaged_sessions": 0}, None),
        ("deliverability", {"emails_delivered": 97, "emails_bounced": 3, "emails_sent": 50}, 0.97),
        ("cart_abandonment_rate", {"carts_abandoned": 7, "carts_purchased": 3}, 0.7),
        # why: NPS = 100 * (promoters - detractors) / responses
        ("nps", {"nps_promoters": 5, "nps_detractors": 2, "nps_responses": 10}, 30.0),
        ("nps", {"nps_promoters": 5, "nps_responses": 10}, 50.0),
        # why: ROI with spend but no revenue is -100 %
        ("roi", {"ad_spend": Decimal("250.00")}, -1.0),
        ("roi", {"revenue": Decimal("600"), "ad_spend": Decimal("200")}, 2.0),
        ("average_order_value", {"revenue": Decimal("100.50"), "purchases": 3}, 33.5),
        # why: plain sums are sums, 0 when absent
        ("traffic", {"pageviews": 7}, 7.0),
        ("traffic", {}, 0.0),
    ],
)
def test_kpi_value(name: str, components: dict[str, int | Decimal], expected: float | None) -> None:
    assert kpi_value(kpi(name), components) == expected


def test_kpi_values_cover_the_breakdown() -> None:
    assert set(kpi_values({}, Labels.page)) == {"landing_bounce_rate"}
    assert "conversion_rate" in kpi_values({}, Labels.campaign_channel)


ROWS = [
    ("sessions", "5m", ("spring", "paid"), 30),
    ("sessions", "5m", ("spring", "paid"), 10),  # a second partition: adds up
    ("bounced_sessions", "5m", ("spring", "paid"), 15),
    ("engaged_sessions", "5m", ("spring", "paid"), 25),
    ("engaged_sessions", "5m", ("autumn", "email"), 20),
    ("sessions", "5m", ("autumn", "email"), 20),
    ("sessions", "1h", ("autumn", "email"), 99),  # other window: ignored
    ("landing_sessions", "5m", ("/home",), 8),
    ("landing_bounced_sessions", "5m", ("/home",), 2),
    ("landing_engaged_sessions", "5m", ("/home",), 6),
]


def test_report_sums_partitions_before_dividing() -> None:
    out = report(ROWS, "5m")
    spring = next(r for r in out["campaigns"] if r["campaign"] == "spring")
    assert spring["components"] == {"bounced_sessions": 15, "engaged_sessions": 25, "sessions": 40}
    assert spring["kpis"]["bounce_rate"] == 0.375
    assert out["overall"]["components"]["sessions"] == 60
    assert out["overall"]["kpis"]["bounce_rate"] == 0.25
    assert out["pages"] == [
        {
            "page": "/home",
            "components": {
                "landing_bounced_sessions": 2,
                "landing_engaged_sessions": 6,
                "landing_sessions": 8,
            },
            "kpis": {"landing_bounce_rate": 0.25},
        }
    ]


def test_report_filters_by_campaign_and_channel() -> None:
    out = report(ROWS, "5m", channel="email")
    assert [(r["campaign"], r["channel"]) for r in out["campaigns"]] == [("autumn", "email")]
    assert out["overall"]["components"] == {"engaged_sessions": 20, "sessions": 20}
    assert out["pages"] == []  # pages have no campaign or channel to filter on
