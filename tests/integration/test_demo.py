"""`streamkpi demo`, the README's first command: KPIs arrive, Ctrl-C leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from _browser import chromium, screenshot_dir
from _workers import free_port, http_json, sample, scrape, stop_group, wait_for
from selenium.webdriver.common.by import By
from test_run_command import alive, descendants

from streamkpi.localkafka import free_port as free_kafka_port


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


async def test_demo_shows_live_kpis_and_ctrl_c_stops_every_process(
    kafka_libs: Path, tmp_path: Path
) -> None:
    kafka_port, web_port = free_kafka_port(), free_port()
    prometheus_port, alertmanager_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMKPI_")}
    log_path = tmp_path / "demo.log"
    log = log_path.open("wb")
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamkpi",
            "demo",
            "--headless",
            "--rate",
            "100",
            "--refresh",
            "1s",
            # A short backfill: this test is about the processes, not the warm start.
            "--backfill",
            "4m",
            "--kafka-port",
            str(kafka_port),
            "--web-port",
            str(web_port),
            "--prometheus-port",
            str(prometheus_port),
            "--alertmanager-port",
            str(alertmanager_port),
            # --incident reaches the generator (it would refuse an unknown campaign); an
            # hour from now, so it changes nothing here.
            "--incident",
            "traffic-stop:campaign=webinar_ai:at=+1h",
            # 60 % of spring_sale's e-mails bounce from the start: the live page must show
            # the deliverability tile in its alert colour and the firing alert (#16).
            "--incident",
            "deliverability-drop:campaign=spring_sale:at=+0s:for=1h:severity=0.6",
            # Renders the alerts the incidents aim at with for: 1m (checked below).
            "--alert-for",
            "1m",
        ],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C is sent to its group, as a terminal does
    )
    log.close()

    def log_tail() -> str:
        return log_path.read_text(errors="replace")[-5000:]

    children: set[int] = set()
    try:

        def kpis_arrived() -> bool:
            samples = scrape(web_port)
            accepted = sample(
                samples, "streamkpi_events_total", topic="pageviews", outcome="accepted"
            )
            return accepted is not None and accepted > 0

        await wait_for(
            kpis_arrived, timeout_s=180, what="accepted pageviews on /metrics", on_timeout=log_tail
        )
        first_kpi_s = time.monotonic() - started

        def volume() -> bool:
            components = http_json(f"http://127.0.0.1:{web_port}/kpis?window=5m")["overall"][
                "components"
            ]
            # E-mails are sent in bursts of the live campaigns: wait for some in the window
            # too, or deliverability has no denominator yet (seen in CI).
            return components.get("sessions", 0) > 100 and components.get("emails_sent", 0) > 20

        await wait_for(volume, timeout_s=120, what="100 sessions and 20 e-mails sent on /kpis")
        document = http_json(f"http://127.0.0.1:{web_port}/kpis?window=5m")
        overall = document["overall"]
        kpis = overall["kpis"]
        # Values that make sense for the generated funnels (not exact: a live stream).
        # Only 4 min of history: no session has ended yet, so session ratios hold only the
        # members decided early (README "Fine print": cold start); test_live_truth.py
        # checks them warm.
        assert 0 <= kpis["conversion_rate"] <= 1, kpis
        assert 0 <= kpis["bounce_rate"] <= 1, kpis
        assert 0.8 < kpis["deliverability"] <= 1, kpis
        assert overall["components"]["pageviews"] >= overall["components"]["sessions"]
        campaigns = {cell["campaign"] for cell in document["campaigns"]}
        assert {"spring_sale", "brand_search", "influencer_x"} <= campaigns
        # Nothing the generator sends is invalid or late for a worker with default settings.
        samples = scrape(web_port)
        for topic in ("pageviews", "emails", "orders"):
            for outcome in ("invalid", "late"):
                assert sample(samples, "streamkpi_events_total", topic=topic, outcome=outcome) == 0
        # The component gauges are on /metrics too.
        gauge = sample(
            samples, "streamkpi_sessions", window="5m", campaign="spring_sale", channel="paid"
        )
        assert gauge is not None
        assert gauge > 0

        # Prometheus (installed in CI) scrapes the demo's worker. It starts once the worker
        # has caught up with the backfill (#11), so it may not be listening yet.
        def scraped() -> bool:
            try:
                targets = http_json(f"http://127.0.0.1:{prometheus_port}/api/v1/targets")
            except OSError:
                return False
            return any(
                t["scrapeUrl"] == f"http://127.0.0.1:{web_port}/metrics"
                for t in targets["data"]["activeTargets"]
            )

        await wait_for(scraped, timeout_s=90, what="the worker among Prometheus's targets")
        # Its alert rules: the shipped ones, those a traffic stop aims at with for: 1m.
        groups = http_json(f"http://127.0.0.1:{prometheus_port}/api/v1/rules?type=alert")
        pending_s = {
            rule["name"]: rule["duration"]
            for group in groups["data"]["groups"]
            for rule in group["rules"]
        }
        assert pending_s["StreamKPINoEvents"] == 60, pending_s
        assert pending_s["StreamKPITrafficDrop"] == 60, pending_s
        assert pending_s["StreamKPIDeliverabilityLow"] == 60, pending_s
        assert pending_s["StreamKPIBounceRateHigh"] == 900, pending_s  # as configured
        # The headless view printed KPI lines.
        await wait_for(
            lambda: "kpis 5m all: sessions=" in log_tail(), timeout_s=30, what="a KPI line"
        )

        # The live page (#16): its URL comes first among the places to look; with the
        # e-mails bouncing, its deliverability tile turns to the alert colour and the
        # alert Alertmanager holds is listed.
        where = log_tail().split("Where to look:", 1)[1].splitlines()
        assert where[1].split()[:3] == ["live", "page", f"http://127.0.0.1:{web_port}/ui"]
        with chromium() as driver:
            driver.get(f"http://127.0.0.1:{web_port}/ui?window=5m&campaign=spring_sale")

            def firing() -> bool:
                tile = driver.find_elements(
                    By.CSS_SELECTOR, '#tile-deliverability[data-status="firing"]'
                )
                listed = driver.find_elements(
                    By.CSS_SELECTOR, 'li.alert[data-alert="StreamKPIDeliverabilityLow"]'
                )
                return bool(tile and listed)

            await wait_for(
                firing,
                timeout_s=300,
                what="the deliverability tile firing on the live page",
                on_timeout=log_tail,
            )
            tile = driver.find_element(By.ID, "tile-deliverability")
            assert tile.value_of_css_property("border-left-color") == "rgba(180, 35, 24, 1)"
            value = float(tile.get_attribute("data-value") or "nan")
            assert value < 0.95, value
            path = screenshot_dir(tmp_path) / "live-page.png"
            driver.save_screenshot(str(path))
            print(f"screenshot: {path}")

        children = descendants(proc.pid)
        names = " ".join(_cmdline(pid) for pid in children)
        for expected in ("kafka.Kafka", "streamkpi worker", "streamkpi generate", "prometheus"):
            assert expected in names, f"{expected} not among the demo's children: {names}"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        assert proc.wait(timeout=90) == 0, log_tail()
    finally:
        stop_group(proc)  # the test failed: stop it cleanly if it can, else kill it
    # Children run in their own process groups: the group signal reached only the demo,
    # which stopped each of them.
    left = {pid: _cmdline(pid) for pid in children if alive(pid)}
    assert not left, f"processes left behind: {left}\n{log_tail()}"
    assert "stopped; nothing left running" in log_tail()
    print(f"first KPIs on /metrics {first_kpi_s:.1f}s after `streamkpi demo` started")
