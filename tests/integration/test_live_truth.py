"""#11 live truth: what a user sees at every scrape of a healthy demo, against the truth.

One run of `streamkpi demo` (real broker, worker, generator, Prometheus with the shipped
rules), warm-started by the steady backfill, watched for OBSERVE_S of event time (the
live stream's event time is the wall clock). At every scrape of the worker's /metrics:

* every ratio KPI of unit ``ratio`` is within [0, 1] at every level (campaign x
  channel, channel, campaign, all; landing page) and window;
* and Prometheus has no alert pending or firing (the shipped rules, their real `for`).

After the run, the input topics are read back from the demo's broker and the ground truth
(streamkpi.generator.truth, written apart from the engine) is computed for the same
references: each 5m ratio must be within TOLERANCE (TOLERANCES) of the truth's, and no
ratio may be constant 0 or 1 over the scrapes while the truth's is not. Provisional KPIs (e-mail
engagement, dated at the delivery) may only lag the truth's final value.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import pytest
from _workers import Samples, free_port, http_json, sample, scrape, stop_group, wait_for
from aiokafka import AIOKafkaConsumer, TopicPartition

from streamkpi.config import Settings
from streamkpi.events import Kind
from streamkpi.generator.stream import Record
from streamkpi.generator.truth import Truth, TruthParams, ground_truth
from streamkpi.kpis.spec import KPIS, Kpi, Labels, Unit
from streamkpi.localkafka import free_port as free_kafka_port

HEALTHY_RATE: Final = 50
# Event time watched after the warm-up: 10 min, as #11 asks; LIVE_TRUTH_OBSERVE_S changes it.
OBSERVE_S: Final = float(os.environ.get("LIVE_TRUTH_OBSERVE_S", "600"))
SCRAPE_EVERY_S: Final = 15.0
# |live - truth| of a 5m ratio at one scrape (all campaigns together). What may differ:
# members decided in the last seconds before a scrape whose events the worker had not
# read yet (the generator's delivery delay, the consumer's batch), and events delivered
# within allowed_lateness_s after the scrape.
TOLERANCE: Final = 0.03
# Cart abandonment waits for a watermark: an abandonment dated T is written when its
# orders partition reads an event at T or later (or after idle_after_s, 30 s, without
# one), and orders are the sparsest topic (a few per second over 4 partitions), so up to
# ~10 % of the window's abandonments can be pending at a scrape (live below the truth).
# Measured worst: 0.016 (150 s run), 0.046 (300 s run, 2026-12-03), but that run also had
# one scrape 0.046 *above* the truth, which this lag does not explain (open question, #11).
TOLERANCES: Final = {"cart_abandonment_rate": 0.06}
# The smallest 5m population (denominator) a comparison is made on.
MIN_POPULATION: Final = 50

RATIOS: Final = tuple(k for k in KPIS if k.unit is Unit.ratio)
# Active customers at a past window start are not in the truth (it keeps the final stock).
NO_TRUTH: Final = frozenset({"churn_rate"})


def _level_keys(kpi: Kpi, labels: tuple[str, ...]) -> Iterable[tuple[str, tuple[str, ...]]]:
    if kpi.labels is Labels.page:
        yield "page", labels
        yield "all", ()
        return
    campaign, channel = labels
    yield "campaign_channel", labels
    yield "channel", (channel,)
    yield "campaign", (campaign,)
    yield "all", ()


def live_ratios(
    samples: Samples, window: str
) -> dict[tuple[str, str, tuple[str, ...]], tuple[float, float]]:
    """(kpi, level, labels) -> (numerator, denominator) summed from the component gauges."""
    out: dict[tuple[str, str, tuple[str, ...]], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for kpi in RATIOS:
        for (name, label_pairs), value in samples.items():
            component = name.removeprefix("streamkpi_")
            labels = dict(label_pairs)
            if labels.get("window") != window or component not in kpi.components:
                continue
            key = (
                (labels["page"],)
                if kpi.labels is Labels.page
                else (
                    labels.get("campaign", ""),
                    labels.get("channel", ""),
                )
            )
            if kpi.labels is not Labels.page and "page" in labels:
                continue
            for level, level_labels in _level_keys(kpi, key):
                cell = out[kpi.name, level, level_labels]
                cell[0] += value * kpi.numerator.count(component)
                cell[0] -= value * kpi.subtract.count(component)
                cell[1] += value * kpi.denominator.count(component)
    return {key: (num, den) for key, (num, den) in out.items()}


def truth_ratio(truth: Truth, kpi: Kpi, reference_s: float) -> tuple[float, float]:
    """Return (numerator, denominator) of ``kpi`` over all labels, 5m window at reference."""
    num = den = 0.0
    for component, labels in {(name, labels) for name, _, labels in truth.buckets}:
        if component not in kpi.components:
            continue
        value = float(truth.window_sum(component, labels, 300, reference_s))
        num += value * (kpi.numerator.count(component) - kpi.subtract.count(component))
        den += value * kpi.denominator.count(component)
    return num, den


async def read_inputs(bootstrap: str, topics: dict[Kind, str]) -> list[Record]:
    """Every committed record of the input topics, per partition in offset order."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[Record] = []
    try:
        tps = [
            TopicPartition(topic, p)
            for topic in topics.values()
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not all(consumer.partitions_for_topic(t) for t in topics.values()):
            await consumer._client.force_metadata_update()  # first metadata fetch
            tps = [
                TopicPartition(topic, p)
                for topic in topics.values()
                for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        kind_of = {topic: kind for kind, topic in topics.items()}
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=2000, max_records=10_000)
            for tp, messages in batches.items():
                for m in messages:
                    if m.offset < ends[tp]:
                        assert m.value is not None
                        records.append(
                            Record(kind_of[tp.topic], tp.partition, m.key or b"", m.value)
                        )
                if messages and messages[-1].offset >= ends[tp] - 1:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return records


@pytest.mark.timeout(OBSERVE_S + 900)  # warm-up (~1-2 min at rate 50) + OBSERVE_S + reading
async def test_a_healthy_demo_tells_the_truth_at_every_scrape_and_raises_no_alert(
    kafka_libs: Path, tmp_path: Path
) -> None:
    """#11 live invariants and no alert; #14: headless fallback and temp dir cleanup."""
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus not installed (.ci/run installs it)", pytrace=False)
    kafka_port, web_port = free_kafka_port(), free_port()
    prometheus_port, alertmanager_port = free_port(), free_port()
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMKPI_")}
    env["TMPDIR"] = str(temp)
    log_path = tmp_path / "demo.log"
    log = log_path.open("wb")
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "streamkpi", "demo", "--rate", str(HEALTHY_RATE)),
            *("--refresh", "5s", "--kafka-port", str(kafka_port), "--web-port", str(web_port)),
            *("--prometheus-port", str(prometheus_port)),
            *("--alertmanager-port", str(alertmanager_port)),
        ],
        env=env,
        cwd=tmp_path,
        stdout=log,  # no terminal: the demo falls back to KPI lines (#14)
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()

    def log_tail() -> str:
        return log_path.read_text(errors="replace")[-5000:]

    prometheus = f"http://127.0.0.1:{prometheus_port}"
    settings = Settings()  # the demo's worker runs with the defaults
    topics = {kind: getattr(settings.topics, kind.value) for kind in Kind}
    scrapes: list[tuple[float, Samples]] = []
    alerts: set[str] = set()
    evaluations: set[str] = set()
    try:
        await wait_for(
            lambda: "first KPIs" in log_tail(),
            timeout_s=600,
            what="first KPIs",
            on_timeout=log_tail,
        )
        warm_s = time.monotonic() - started
        samples = scrape(web_port)
        for topic in ("pageviews", "emails", "orders", "adspend"):  # backfill in order
            assert sample(samples, "streamkpi_events_total", topic=topic, outcome="late") == 0

        deadline = time.monotonic() + OBSERVE_S
        while time.monotonic() < deadline:
            before = time.time()
            samples = scrape(web_port)
            after = time.time()
            # The worker's reference is its clock during the scrape: keep scrapes that
            # did not straddle a bucket boundary.
            if samples is not None and before // 60 == after // 60:
                scrapes.append((after, samples))
            for alert in http_json(f"{prometheus}/api/v1/alerts")["data"]["alerts"]:
                labels = alert["labels"]
                where = ",".join(f"{k}={labels[k]}" for k in ("campaign", "channel") if k in labels)
                alerts.add(f"{alert['state']} {labels['alertname']}{{{where}}}")
            groups = http_json(f"{prometheus}/api/v1/rules?type=alert")["data"]["groups"]
            evaluations |= {g["lastEvaluation"] for g in groups if g["rules"]}
            await asyncio.sleep(SCRAPE_EVERY_S)  # the scrape interval, not a synchronisation
        # Events of the last scrape may arrive up to the lateness later; the generator's
        # delivery delay is seconds.
        await asyncio.sleep(20)
        records = await read_inputs(f"127.0.0.1:{kafka_port}", topics)
        assert "kpis 5m all: sessions=" in log_tail()
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=90) == 0, log_tail()
    finally:
        stop_group(proc)  # the test failed: stop it cleanly if it can, else kill it
    assert not list(temp.glob("streamkpi-demo-*")), "the demo's temp dir was left behind"
    assert len(evaluations) >= 4, evaluations  # Prometheus evaluated the rules, repeatedly
    assert len(scrapes) >= OBSERVE_S / SCRAPE_EVERY_S / 2, len(scrapes)

    # 1. Bounds at every scrape, level and window.
    out_of_bounds = []
    for at, samples in scrapes:
        for window in settings.window_seconds:
            for (name, level, labels), (num, den) in live_ratios(samples, window).items():
                if den > 0 and not -1e-9 <= num / den <= 1 + 1e-9:
                    out_of_bounds.append((at, window, name, level, labels, num, den))
    assert not out_of_bounds, out_of_bounds[:20]

    # 2. Against the truth, and never constant where the truth moves.
    truth = ground_truth(records, TruthParams.from_settings(settings, now_s=time.time()))
    report = []
    failures = []
    for kpi in RATIOS:
        live_values: list[float] = []
        truth_values: list[float] = []
        worst = 0.0
        for at, samples in scrapes:
            num, den = live_ratios(samples, "5m").get((kpi.name, "all", ()), (0.0, 0.0))
            if den <= 0:
                continue
            live = num / den
            live_values.append(live)
            if kpi.name in NO_TRUTH:
                continue
            t_num, t_den = truth_ratio(truth, kpi, at)
            if t_den < MIN_POPULATION or den < MIN_POPULATION:
                continue
            expected = t_num / t_den
            truth_values.append(expected)
            error = live - expected
            if kpi.provisional:  # only later opens of the cohort are missing
                error = max(error, 0.0)
            worst = max(worst, abs(error))
            if abs(error) > TOLERANCES.get(kpi.name, TOLERANCE):
                failures.append(f"{kpi.name} at {at:.0f}: live {live:.4f} truth {expected:.4f}")
        report.append(
            f"{kpi.name}: {len(live_values)} scrapes with a population, "
            f"{len(truth_values)} compared, worst |live-truth| {worst:.4f}, "
            f"live range {min(live_values, default=math.nan):.3f}"
            f"..{max(live_values, default=math.nan):.3f}"
        )
        for stuck in (0.0, 1.0):
            if not live_values or any(v != stuck for v in live_values):
                continue
            # churn_after_s is 90 d by default: no customer can churn during the run, so
            # a constant 0 is the truth; anything else constant is stuck by construction.
            truth_moves = any(v != stuck for v in truth_values)
            if truth_moves or (kpi.name in NO_TRUTH and stuck != 0.0):
                failures.append(f"{kpi.name} is constant {stuck} in the 5m window")
    print(f"warm after {warm_s:.0f}s; {len(scrapes)} scrapes; {len(records)} records")
    print("\n".join(report))
    assert not failures, "\n".join(failures[:30]) + "\n" + "\n".join(report)
    assert not alerts, f"alerts in a healthy demo after the warm-up: {sorted(alerts)}"
