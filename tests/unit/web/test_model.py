"""The live page's model: selections, thresholds, tile status, changes, formats (#16)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from streamkpi.alerts.config import load_alert_config
from streamkpi.kpis.spec import kpi
from streamkpi.kpis.values import Row, report
from streamkpi.web.model import (
    Alert,
    Health,
    PageError,
    Selection,
    Status,
    build_page,
    format_value,
    parse_selection,
    thresholds_of,
)

WINDOWS = ("5m", "1h", "24h")
CONFIG = load_alert_config()


def test_a_selection_defaults_to_the_shortest_window_and_all() -> None:
    assert parse_selection([], WINDOWS) == Selection("5m")
    # The form's "All campaigns" option sends an empty value.
    chosen = parse_selection([("window", "1h"), ("campaign", "x"), ("channel", "")], WINDOWS)
    assert chosen == Selection("1h", "x", None)
    assert chosen.query(campaign=None) == {"window": "1h"}
    assert chosen.query(channel="paid") == {"window": "1h", "campaign": "x", "channel": "paid"}


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([("window", "7m")], "window '7m' is not one of 5m, 1h, 24h"),
        ([("campaign", "a"), ("campaign", "b")], "parameter 'campaign' is given more than once"),
        ([("visitor", "v1")], "unknown parameter 'visitor'"),
    ],
)
def test_a_bad_query_is_refused_with_the_reason(pairs: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(PageError, match=message):
        parse_selection(pairs, WINDOWS)


def test_thresholds_are_the_alert_configs_with_campaign_overrides() -> None:
    shipped = thresholds_of(CONFIG, None)
    deliverability = shipped["deliverability"]
    assert (deliverability.lower, deliverability.upper) == (0.95, None)
    assert deliverability.severity == "critical"
    assert (deliverability.volume, deliverability.min_volume) == ("emails_sent", 200)
    assert deliverability.short_s == 300
    assert shipped["roas"].volume == "purchases"  # the config's `volume:`, not ad_spend
    assert "conversion_rate" not in shipped  # a drift alert only: no fixed threshold
    assert thresholds_of(CONFIG, "black_friday")["cpa"].upper == 250
    assert "bounce_rate" not in thresholds_of(CONFIG, "brand_search")
    assert "bounce_rate" in thresholds_of(CONFIG, "spring_sale")


def email_rows(sent: int, delivered: int, campaign: str = "c1", window: str = "5m") -> list[Row]:
    return [
        ("emails_sent", window, (campaign, "email"), sent),
        ("emails_delivered", window, (campaign, "email"), delivered),
        ("emails_bounced", window, (campaign, "email"), sent - delivered),
    ]


def page_of(rows: list[Row], selection: Selection, **kwargs: Any) -> Any:
    document = report(rows, selection.window, campaign=selection.campaign)
    arguments: dict[str, Any] = {
        "windows": WINDOWS,
        "campaigns": [],
        "channels": [],
        "alert_config": CONFIG,
        "previous": None,
        "trend": [],
        "alerts": [],
        "alerts_note": "",
        "health": Health(),
        "scope": "",
        "currency": "EUR",
        "generated_s": 0.0,
    } | kwargs
    return build_page(document, selection, **arguments)


def tile(page: Any, name: str) -> Any:
    return next(t for _, tiles in page.groups for t in tiles if t.kpi.name == name)


@pytest.mark.parametrize(
    ("sent", "delivered", "window", "status"),
    [
        (1000, 990, "5m", Status.ok),
        (1000, 900, "5m", Status.breach),  # 90 % of 1,000: below 95 %, enough volume
        (100, 90, "5m", Status.low_volume),  # 90 %, but 100 < 200 e-mails in 5m
        # The guard scales with the window: 1h needs 12 x 200 = 2,400 e-mails.
        (2000, 1800, "1h", Status.low_volume),
        (2400, 2160, "1h", Status.breach),
    ],
)
def test_a_tile_is_coloured_as_the_alert_would_judge_it(
    sent: int, delivered: int, window: str, status: Status
) -> None:
    page = page_of(email_rows(sent, delivered, window=window), Selection(window))
    assert tile(page, "deliverability").status is status
    assert tile(page, "deliverability").value == pytest.approx(delivered / sent)
    # A KPI without a threshold, or without a value, is plain.
    assert tile(page, "open_rate").status is Status.plain
    assert tile(page, "cpa").status is Status.plain


def alert(campaign: str, name: str = "StreamKPIDeliverabilityLow") -> Alert:
    return Alert.from_alertmanager(
        {
            "labels": {
                "alertname": name,
                "kpi": "deliverability",
                "campaign": campaign,
                "channel": "email",
                "severity": "critical",
            },
            "annotations": {"summary": "Deliverability below 95%", "description": "d"},
            "startsAt": "2026-12-03T18:52:50.058Z",
        }
    )


def test_a_firing_alert_of_the_selection_marks_its_tile_and_row() -> None:
    rows = email_rows(1000, 990, "c1") + email_rows(1000, 500, "c2")
    firing = [alert("c2")]
    everything = page_of(rows, Selection("5m"), alerts=firing)
    assert tile(everything, "deliverability").status is Status.firing
    assert "StreamKPIDeliverabilityLow" in tile(everything, "deliverability").detail
    assert [a.name for a in everything.alerts] == ["StreamKPIDeliverabilityLow"]
    assert everything.alerts[0].starts_at == "2026-12-03 18:52:50 UTC"
    cells = {r.campaign: r.cells[3].status for r in everything.rows}  # deliverability column
    assert cells == {"c1": Status.ok, "c2": Status.firing}
    # Another campaign's alert is not this campaign's.
    other = page_of(rows, Selection("5m", campaign="c1"), alerts=firing)
    assert other.alerts == ()
    assert tile(other, "deliverability").status is Status.ok


def test_the_change_is_against_the_previous_window_and_says_if_it_is_good() -> None:
    rows: list[Row] = [
        ("sessions", "5m", ("c1", "paid"), 200),
        ("bounced_sessions", "5m", ("c1", "paid"), 60),
        ("engaged_sessions", "5m", ("c1", "paid"), 140),
    ]
    page = page_of(rows, Selection("5m"), previous={"bounce_rate": 0.25, "sessions": 250.0})
    bounce = tile(page, "bounce_rate")
    assert bounce.value == pytest.approx(0.3)
    assert (bounce.change, bounce.change_good) == ("+5.0 pp", False)  # bounce up is bad
    sessions = tile(page, "sessions")
    assert (sessions.change, sessions.change_good) == ("-20%", False)
    # Nothing to compare: no change shown.
    assert tile(page_of(rows, Selection("5m")), "bounce_rate").change == ""


def test_values_are_formatted_by_unit() -> None:
    assert format_value(kpi("deliverability"), 0.98765, "EUR") == "98.8%"
    assert format_value(kpi("cpa"), 1234.5, "EUR") == "EUR 1,234.50"
    assert format_value(kpi("roas"), 2.1, "EUR") == "2.10x"
    assert format_value(kpi("nps"), 14.2, "EUR") == "+14"
    assert format_value(kpi("sessions"), 12345.0, "EUR") == "12,345"
    assert format_value(kpi("roi"), -0.156, "EUR") == "-15.6%"
    assert format_value(kpi("roas"), None, "EUR") == "—"


def test_money_sums_stay_exact_through_the_page() -> None:
    rows: list[Row] = [
        ("revenue", "5m", ("c1", "paid"), Decimal("0.10")),
        ("revenue", "5m", ("c1", "paid"), Decimal("0.20")),
        ("purchases", "5m", ("c1", "paid"), 3),
    ]
    assert tile(page_of(rows, Selection("5m")), "average_order_value").text == "EUR 0.10"
