"""The live page (#16) in a real headless Chromium, against a real worker and the truth.

A generated stream that ended hours ago (every session, cart and churn timer has fired,
so the 24 h window no longer moves) is counted by one worker. The page's tiles must show
what ``/kpis`` says for the same window and what the generator's ground truth says,
follow the campaign filter (kept in the URL), refresh in place, send no request off the
worker, raise no CSP violation, and show its tiles with JavaScript disabled.
"""

from __future__ import annotations

import html
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from _browser import chromium, screenshot_dir
from _workers import WorkerProcess, http_json, wait_for
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from test_engine_exact import ENGINE_ENV, PARTITIONS, _produce, expected_24h, truth_params

from streamkpi.events import Kind
from streamkpi.generator.stream import GenConfig, generate
from streamkpi.generator.truth import ground_truth
from streamkpi.kpis.spec import KPIS, Labels
from streamkpi.kpis.values import kpi_value
from streamkpi.localkafka import LocalKafka

WINDOW = "24h"
TILE_KPIS = [k for k in KPIS if k.labels is Labels.campaign_channel]


def truth_kpis(
    truth_components: dict[tuple[str, tuple[str, ...]], float], campaign: str | None
) -> dict[str, float | None]:
    """The truth's KPIs of every campaign x channel cell (of ``campaign`` if given), summed."""
    summed: dict[str, float] = {}
    for (component, labels), value in truth_components.items():
        if len(labels) != 2 or (campaign is not None and labels[0] != campaign):
            continue
        summed[component] = summed.get(component, 0.0) + value
    return {k.name: kpi_value(k, summed) for k in TILE_KPIS}


def tiles(driver: Any) -> dict[str, float | None]:
    """Read every tile's value (its data-value attribute) from the page in the browser."""
    out: dict[str, float | None] = {}
    for element in driver.find_elements(By.CSS_SELECTOR, "article.tile"):
        raw = element.get_attribute("data-value")
        out[element.get_attribute("data-kpi")] = float(raw) if raw else None
    return out


def same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def differences(got: dict[str, float | None], want: dict[str, float | None]) -> list[str]:
    return [
        f"{k}: page {got.get(k)}, expected {v}" for k, v in want.items() if not same(got.get(k), v)
    ]


async def test_the_live_page_shows_the_kpis_follows_the_filter_and_refreshes(
    kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    now = time.time()
    config = GenConfig(
        seed=23,
        start_s=now - 6 * 3600,
        duration_s=90 * 60,
        partitions=PARTITIONS,
        visitors=800,
        recipients=300,
        customers=400,
        respondents=150,
        email_campaigns=4,
    )
    records = generate(config)
    truth = ground_truth(records, truth_params(now))
    run = uuid.uuid4().hex[:6]
    topics = {kind: f"{kind.value}-page-{run}" for kind in Kind}
    await _produce(kafka_broker.bootstrap_servers, topics, records)
    app_id = f"page-{run}"
    env = {
        **ENGINE_ENV,
        "STREAMKPI_APP_ID": app_id,
        "STREAMKPI_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
        "STREAMKPI_TOPICS__DLQ": f"{app_id}-dlq",
        "STREAMKPI_TOPICS__SNAPSHOTS": f"{app_id}-snapshots",
        "STREAMKPI_DATA_DIR": str(tmp_path / app_id),
        "STREAMKPI_LOG_LEVEL": "warning",
        "STREAMKPI_WEB_VIEW__SAMPLE_S": "1",
        **{f"STREAMKPI_TOPICS__{kind.value.upper()}": topic for kind, topic in topics.items()},
    }
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    base = f"http://127.0.0.1:{worker.web_port}"
    expected = expected_24h(truth, time.time())
    try:
        overall = truth_kpis(expected, None)

        def counted() -> bool:
            try:
                document = http_json(f"{base}/kpis?window={WINDOW}")
            except OSError:
                return False
            return not differences(document["overall"]["kpis"], overall)

        await wait_for(counted, timeout_s=120, what="/kpis == truth", on_timeout=worker.log_tail)

        with chromium() as driver:
            driver.get(f"{base}/ui?window={WINDOW}")
            await wait_for(
                lambda: len(tiles(driver)) == len(TILE_KPIS),
                timeout_s=20,
                what="the tiles",
            )
            api = http_json(f"{base}/kpis?window={WINDOW}")["overall"]["kpis"]
            assert not differences(tiles(driver), api), differences(tiles(driver), api)
            assert not differences(tiles(driver), overall)
            # What a visitor reads is the same number, formatted.
            sessions = driver.find_element(By.CSS_SELECTOR, "#tile-sessions .value").text
            assert sessions == f"{overall['sessions']:,.0f}"
            deliverability = driver.find_element(By.CSS_SELECTOR, "#tile-deliverability .value")
            assert deliverability.text == f"{overall['deliverability'] * 100:.1f}%"

            # The campaign filter: the page follows, and keeps it in the URL.
            campaign = max(
                {labels[0] for (c, labels) in expected if c == "sessions" and len(labels) == 2}
                - {"none"},
                key=lambda name: expected.get(("sessions", (name, "paid")), 0),
            )
            Select(driver.find_element(By.ID, "campaign")).select_by_value(campaign)
            await wait_for(
                lambda: (
                    urllib.parse.parse_qs(urllib.parse.urlsplit(driver.current_url).query).get(
                        "campaign"
                    )
                    == [campaign]
                ),
                timeout_s=10,
                what=f"campaign={campaign} in the URL",
            )
            want = truth_kpis(expected, campaign)
            await wait_for(
                lambda: not differences(tiles(driver), want),
                timeout_s=10,
                what="tiles of the chosen campaign",
                on_timeout=lambda: "\n".join(differences(tiles(driver), want)),
            )
            query = urllib.parse.urlencode({"window": WINDOW, "campaign": campaign})
            api = http_json(f"{base}/kpis?{query}")["overall"]["kpis"]
            assert not differences(tiles(driver), api)
            rows = driver.find_elements(By.CSS_SELECTOR, "#campaigns tbody tr")
            assert rows
            assert {r.get_attribute("data-campaign") for r in rows} == {campaign}
            assert Select(driver.find_element(By.ID, "campaign")).first_selected_option.text == (
                campaign
            )

            # Trends: samples every second of a window that no longer moves draw a line.
            await wait_for(
                lambda: bool(driver.find_elements(By.CSS_SELECTOR, "#tile-sessions svg polyline")),
                timeout_s=20,
                what="a trend line (live.js refreshes the live part)",
            )
            # live.js re-fetches the live part every 5 s, in place (no navigation).
            await wait_for(
                lambda: bool(driver.execute_script("return document.body.dataset.refreshed")),
                timeout_s=20,
                what="live.js to refresh the page in place",
            )
            assert not differences(tiles(driver), want)
            # Nothing is fetched from anywhere but the worker; no CSP violation, no 404.
            resources = driver.execute_script(
                "return performance.getEntriesByType('resource').map(e => e.name)"
            )
            assert resources
            assert all(url.startswith(base + "/") for url in resources), resources
            severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            assert not severe, severe
            path = screenshot_dir(tmp_path) / "live-page-filter.png"
            driver.save_screenshot(str(path))
            print(f"screenshot: {path}")

        # Without JavaScript the tiles are there: they are server-rendered.
        with chromium(javascript=False) as driver:
            driver.get(f"{base}/ui?window={WINDOW}")
            assert not differences(tiles(driver), overall)
            assert driver.find_element(By.ID, "show").is_displayed()  # the form's button

        # The headers a browser enforces, and refusals that say why.
        with urllib.request.urlopen(f"{base}/ui", timeout=10) as response:
            csp = response.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp
            assert "default-src 'none'" in csp
            page = response.read().decode()
        # No visitor, customer or recipient id is on the page.
        ids = {
            value
            for r in records[:2000]
            for value in re.findall(rb'"(?:visitor|customer|recipient)_id":"([^"]+)"', r.value)
        }
        assert ids
        assert not [i for i in ids if i.decode() in page]
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/ui?window=7m", timeout=10)
        assert refused.value.code == 400
        body = html.unescape(refused.value.read().decode())
        assert "window '7m' is not one of 5m, 1h, 24h" in body
    finally:
        assert worker.stop() == 0, worker.log_tail()
