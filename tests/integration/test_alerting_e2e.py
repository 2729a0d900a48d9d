"""End to end: a deliverability collapse pages through Prometheus and Alertmanager, then resolves.

Real Kafka, a real worker, a real Prometheus evaluating the generated recording and alert
rules, a real Alertmanager routing with the shipped config to a webhook served here.

Time. The worker's windows are trailing sums of event-time buckets ending at the scrape's
wall clock, so the stream is produced live: the generator's events are produced once their
event time has passed (the first 35 s at once, then as the clock reaches them). Phases in
event time: healthy until INCIDENT_AT, e-mails of campaign c07 bouncing at 60 % for
INCIDENT_S (a `deliverability-drop` incident, the one `streamkpi generate --incident`
takes), healthy again. The rules are rendered from the shipped alert config with test
windows (20 s and 40 s, 5 s buckets) and `for: 5s`: the same generator, other numbers.

Noise. Deliverability over a window is delivered / sent counted in that window, and a
delivery trails its send by 1-30 s, so a healthy campaign's windowed value jitters around
1. At 100 sends/s per campaign the jitter is about 0.03 over 20 s and 0.015 over 40 s:
a healthy campaign stays above 0.95 in the long window (3 sigma), so it does not alert.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from _alertmanager import AlertmanagerProcess, config_with_webhook
from _prometheus import PrometheusProcess
from _workers import WorkerProcess, sample, wait_for
from aiohttp import web
from aiokafka import AIOKafkaProducer

from streamkpi.alerts.config import check_windows, load_alert_config
from streamkpi.alerts.rules import render_alert_file
from streamkpi.events import Kind
from streamkpi.generator.incidents import Incident, IncidentKind
from streamkpi.generator.stream import GenConfig, Record, generate
from streamkpi.kpis.spec import KPIS
from streamkpi.localkafka import LocalKafka, create_topics
from streamkpi.rules.recording import render_rule_file

PARTITIONS = 4
WINDOWS = ("20s", "40s")
BACKFILL_S = 35.0  # produced at once: the windows are full from the start
INCIDENT_AT_S = 25.0  # after the worker is ready
INCIDENT_S = 35.0
CAMPAIGN = "c07"
ALERT = "StreamKPIDeliverabilityLow"


# KPIs with a detection delay (decided at session end or a deadline).
DELAYED = frozenset(k.name for k in KPIS if k.delay)


def rule_config_for_test() -> Any:
    """Return the shipped alert config with test windows, `for` and volumes."""
    data = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "streamkpi" / "alerts" / "default.yml").read_text()
    )
    kpis = {}
    for name, entry in data["kpis"].items():
        if name in DELAYED:
            # Session and cart KPIs are decided 35 min after the change (#11): the test's
            # 20s/40s windows are refused for them, and this scenario is about e-mail.
            continue
        entry = {**entry, "for": "5s", "min_volume": 50}
        entry.pop("windows", None)  # NPS's 1h/24h: the test windows instead
        if "drift" in entry:
            entry["drift"] = {**entry["drift"], "for": "5s"}
        kpis[name] = entry
    pipeline = data["pipeline"]
    for key in ("invalid_events", "late_events", "consumer_lag", "worker_down", "dead_letters"):
        pipeline[key] = {**pipeline[key], "for": "5s"}
    # The backfill is a burst of 50k records: lag, not an incident.
    pipeline["consumer_lag"]["min_lag"] = 1_000_000
    pipeline["no_events"] = {**pipeline["no_events"], "topics": ["emails"], "after": "10s"}
    pipeline["windows"] = {"short": "10s", "long": "30s"}
    campaigns = {
        campaign: {name: entry for name, entry in overrides.items() if name not in DELAYED}
        for campaign, overrides in data["campaigns"].items()
    }
    config = load_alert_config(
        None,
        windows={"short": WINDOWS[0], "long": WINDOWS[1]},
        kpis=kpis,
        campaigns={c: o for c, o in campaigns.items() if o},
        pipeline=pipeline,
    )
    check_windows(config, WINDOWS)
    return config


def event_time_s(record: Record) -> float:
    """Return the event time of a generated record (any of the wire's ts spellings)."""
    ts = json.loads(record.value)["ts"]
    if isinstance(ts, str):
        return datetime.fromisoformat(ts).timestamp()
    return ts / 1000 if abs(ts) > 2e10 else float(ts)


class Webhook:
    """An Alertmanager webhook receiver: keeps every notification it gets."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/alerts", self._receive)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _receive(self, request: web.Request) -> web.Response:
        self.notifications.append(await request.json())
        return web.Response(text="ok")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"

    def alerts(self, status: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """Return (receiver, alert) of every notified alert, optionally of one status."""
        return [
            (note["receiver"], alert)
            for note in self.notifications
            for alert in note["alerts"]
            if status is None or alert["status"] == status
        ]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def produce_live(
    bootstrap: str, topics: dict[Kind, str], records: list[tuple[float, Record]]
) -> None:
    """Produce each record once the clock has reached its event time."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    await producer.start()
    try:
        index = 0
        while index < len(records):
            now = time.time()
            batch = []
            while index < len(records) and records[index][0] <= now:
                _, record = records[index]
                batch.append(
                    await producer.send(
                        topics[record.kind],
                        record.value,
                        key=record.key,
                        partition=record.partition,
                    )
                )
                index += 1
            if batch:
                await asyncio.gather(*batch)
            await asyncio.sleep(0.1)  # pacing of a live producer, not a synchronisation
    finally:
        await producer.stop()


async def test_a_deliverability_collapse_pages_once_and_resolves(
    kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    started = time.monotonic()
    run = uuid.uuid4().hex[:6]
    topics = {kind: f"{kind.value}-alerts-{run}" for kind in Kind}
    bootstrap = kafka_broker.bootstrap_servers
    await create_topics(bootstrap, list(topics.values()), partitions=PARTITIONS)

    config = rule_config_for_test()
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "recording.yml").write_text(render_rule_file(WINDOWS))
    (rules_dir / "alerts.yml").write_text(render_alert_file(config, "test"))

    webhook = Webhook()
    await webhook.start()
    alertmanager = AlertmanagerProcess(tmp_path / "am", config_with_webhook(webhook.url))
    app_id = f"alerts-{run}"
    env = {
        "STREAMKPI_APP_ID": app_id,
        "STREAMKPI_BOOTSTRAP_SERVERS": bootstrap,
        "STREAMKPI_TOPICS__DLQ": f"{app_id}-dlq",
        "STREAMKPI_TOPICS__SNAPSHOTS": f"{app_id}-snapshots",
        "STREAMKPI_DATA_DIR": str(tmp_path / "worker"),
        "STREAMKPI_TOPIC_PARTITIONS": str(PARTITIONS),
        "STREAMKPI_BUCKET_S": "5",
        "STREAMKPI_WINDOWS": ",".join(WINDOWS),
        "STREAMKPI_IDLE_AFTER_S": "2",
        "STREAMKPI_CHECKPOINT_INTERVAL_S": "0.5",
        "STREAMKPI_LOG_LEVEL": "warning",
        **{f"STREAMKPI_TOPICS__{kind.value.upper()}": topic for kind, topic in topics.items()},
    }
    worker = WorkerProcess(env, tmp_path / "worker.log")
    prometheus = PrometheusProcess(
        tmp_path / "prometheus",
        [f"127.0.0.1:{worker.web_port}"],
        [rules_dir / "recording.yml", rules_dir / "alerts.yml"],
        alertmanager_url=alertmanager.url,
    )
    producing: asyncio.Task[None] | None = None

    def logs() -> str:
        return (
            f"worker:\n{worker.log_tail()}\nprometheus:\n{prometheus.log_tail()}\n"
            f"alertmanager:\n{alertmanager.log_tail()}\nnotifications: {webhook.notifications}"
        )

    try:
        alertmanager.start()
        worker.start()
        prometheus.start()
        await wait_for(
            lambda: sample(worker.metrics(), "streamkpi_owned_partitions") == PARTITIONS,
            timeout_s=60,
            what="the worker to own every partition",
            on_timeout=logs,
        )

        # The stream, relative to now: campaign c07's sends span [t0 - 300, t0 + 300),
        # c08's [t0 - 100, t0 + 500) (the generator's documented schedule, span 600 s; the
        # stream ends at t0 + 200). Both campaigns have been sending for longer than the
        # long window plus the delivery delay (30 s) when the backfill starts: a campaign's
        # first 70 s have sends whose deliveries are still to come, so its windowed
        # deliverability is low by construction, not by incident (a flake seen in CI).
        t0 = time.time()
        incident_at = t0 + INCIDENT_AT_S
        start_s = t0 - 400
        gen = GenConfig(
            seed=5,
            start_s=start_s,
            duration_s=600,
            partitions=PARTITIONS,
            web_campaigns=1,
            email_campaigns=2,
            visitors=0,
            recipients=100_000,  # 60 % sent over 10 min: 100 sends/s per campaign
            customers=0,
            respondents=0,
            duplicate_rate=0,
            disorder_s=0,
            late_rate=0,
            invalid_rate=0,
            email_bounce_rate=0.0,
            incidents=(
                # 60 % of c07's deliveries become hard bounces (the --incident syntax:
                # deliverability-drop:campaign=c07:at=+<s>:for=35s:severity=0.6).
                Incident(
                    IncidentKind.deliverability_drop,
                    campaign=CAMPAIGN,
                    at_s=incident_at - start_s,
                    for_s=INCIDENT_S,
                    severity=0.6,
                ),
            ),
        )
        records = sorted(
            ((event_time_s(r), r) for r in generate(gen) if r.kind is Kind.emails),
            key=lambda pair: pair[0],
        )
        records = [pair for pair in records if pair[0] >= t0 - BACKFILL_S]
        producing = asyncio.create_task(produce_live(bootstrap, topics, records))

        long = f"campaign_channel:streamkpi_deliverability:ratio{WINDOWS[1]}"

        def both_campaigns_recorded() -> bool:
            found = {labels["campaign"] for labels, _ in prometheus.query(long)}
            return {CAMPAIGN, "c08"} <= found

        await wait_for(
            both_campaigns_recorded, timeout_s=30, what="deliverability records", on_timeout=logs
        )

        # Healthy baseline: until the incident's first missing delivery could show, no KPI
        # alert is pending or firing, and nothing was notified.
        def healthy_until_incident() -> bool:
            kpi_alerts = [a for a in prometheus.alerts() if "kpi" in a["labels"]]
            assert kpi_alerts == [], f"alert during the healthy baseline: {kpi_alerts}"
            assert webhook.alerts() == [], webhook.notifications
            return time.time() >= incident_at

        await wait_for(healthy_until_incident, timeout_s=60, what="the incident's start")
        values = {labels["campaign"]: v for labels, v in prometheus.query(long)}
        assert values[CAMPAIGN] > 0.95, values  # the rules saw a healthy campaign

        # The incident: one page (and its chat mirror) for c07, with the rule's labels.
        def paged() -> bool:
            return any(a["labels"]["alertname"] == ALERT for _, a in webhook.alerts("firing"))

        await wait_for(paged, timeout_s=INCIDENT_S + 30, what=f"{ALERT} firing", on_timeout=logs)
        fired_after_s = time.time() - incident_at
        firing = [(r, a) for r, a in webhook.alerts("firing") if a["labels"]["alertname"] == ALERT]
        receiver, alert = firing[0]
        assert alert["labels"] == {
            "alertname": ALERT,
            "severity": "critical",
            "kpi": "deliverability",
            "topics": ",emails,",
            "campaign": CAMPAIGN,
            "channel": "email",
        }
        annotations = alert["annotations"]
        assert annotations["summary"] == "Deliverability below 95%"
        assert annotations["description"].startswith(
            f"Campaign {CAMPAIGN} (channel email): deliverability is "
        )
        assert annotations["runbook_url"] == f"{config.runbook_url}#streamkpideliverabilitylow"
        assert f"var-campaign={CAMPAIGN}&var-channel=email" in annotations["dashboard_url"]
        await wait_for(
            lambda: (
                {r for r, a in webhook.alerts("firing") if a["labels"]["alertname"] == ALERT}
                == {"pager", "chat"}
            ),
            timeout_s=15,
            what="the page mirrored to chat",
        )
        assert receiver in ("pager", "chat")

        # Healthy again: Alertmanager sends `resolved` for the same alert.
        def resolved() -> bool:
            return any(
                a["labels"]["alertname"] == ALERT and a["labels"]["campaign"] == CAMPAIGN
                for _, a in webhook.alerts("resolved")
            )

        await wait_for(
            resolved, timeout_s=INCIDENT_S + 90, what=f"{ALERT} resolved", on_timeout=logs
        )
        resolved_after_s = time.time() - (incident_at + INCIDENT_S)

        # Nothing else: only c07's deliverability alert was ever notified.
        others = {
            (a["labels"]["alertname"], a["labels"].get("campaign")) for _, a in webhook.alerts()
        }
        assert others == {(ALERT, CAMPAIGN)}, webhook.notifications
        print(
            f"fired {fired_after_s:.0f}s after the incident began, resolved "
            f"{resolved_after_s:.0f}s after it ended; test {time.monotonic() - started:.0f}s"
        )
    finally:
        if producing is not None:
            producing.cancel()
            await asyncio.gather(producing, return_exceptions=True)
        prometheus.stop()
        if worker.proc is not None:
            worker.stop()
        alertmanager.stop()
        await webhook.stop()
