"""The live page's HTML: escaped, self-contained, trends drawn without data invented (#16)."""

from __future__ import annotations

import re

from streamkpi.alerts.config import load_alert_config
from streamkpi.kpis.values import Row, report
from streamkpi.web.model import Alert, Health, Selection, build_page
from streamkpi.web.render import CONTENT_SECURITY_POLICY, render_page, sparkline, static_file

HOSTILE = '"><script>alert(1)</script>'


def page_html(fragment: bool = False) -> str:
    rows: list[Row] = [
        ("sessions", "5m", (HOSTILE, "paid"), 10),
        ("emails_sent", "5m", ("c1", "email"), 1000),
        ("emails_delivered", "5m", ("c1", "email"), 500),
        ("emails_bounced", "5m", ("c1", "email"), 500),
    ]
    selection = Selection("5m")
    alert = Alert.from_alertmanager(
        {"labels": {"alertname": "A", "campaign": HOSTILE}, "annotations": {"summary": HOSTILE}}
    )
    page = build_page(
        report(rows, "5m"),
        selection,
        windows=("5m", "1h"),
        campaigns=[HOSTILE, "c1"],
        channels=["paid", "email"],
        alert_config=load_alert_config(),
        previous=None,
        trend=[(0.0, {"sessions": 5.0}), (20.0, {"sessions": 10.0})],
        alerts=[alert],
        alerts_note="",
        health=Health(events_per_s=12.5),
        scope="scope",
        currency="EUR",
        generated_s=0.0,
    )
    return render_page(page, refresh_s=5, fragment=fragment)


def test_label_values_are_escaped_everywhere() -> None:
    html = page_html()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # In the table's link the value is URL-encoded.
    assert "campaign=%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E" in html


def test_the_page_loads_only_its_own_files_and_has_no_inline_code() -> None:
    html = page_html()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources
    assert all(s.startswith(("/ui", "?")) for s in sources), sources
    assert "<script>" not in html  # only <script src=...>: the CSP forbids inline code
    assert " style=" not in html
    assert re.search(r"\bon[a-z]+=", html) is None  # no inline event handlers
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert b"fetch(" in static_file("live.js")


def test_the_fragment_is_only_the_live_part() -> None:
    fragment = page_html(fragment=True)
    assert "<html" not in fragment
    assert 'id="tile-deliverability"' in fragment
    assert 'data-status="breach"' in fragment  # 50 % of 1,000 e-mails


def test_a_sparkline_breaks_at_missing_values_and_needs_two_points() -> None:
    assert sparkline([]) == ""
    assert sparkline([(0.0, 1.0)]) == ""
    assert sparkline([(0.0, 1.0), (10.0, None), (20.0, 2.0)]) == ""  # no two in a row
    line = sparkline([(0.0, 0.0), (10.0, 1.0), (20.0, None), (30.0, 1.0), (40.0, 0.0)], 40, 36)
    first, second = line.split("|")
    assert first == "0.0,34.0 10.0,2.0"  # low at the bottom (with 2 px padding), high on top
    assert second == "30.0,2.0 40.0,34.0"
    flat = sparkline([(0.0, 5.0), (10.0, 5.0)], 10, 36)
    assert flat == "0.0,18.0 10.0,18.0"  # a constant is drawn mid-height
