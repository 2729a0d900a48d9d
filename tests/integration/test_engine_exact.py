"""The KPI engine on a real broker: exact counts, after SIGKILLs, and across two workers.

One generated stream (>= 100k records over all five topics, with duplicates, disorder,
late and invalid events) is produced once; each test consumes it with its own consumer
group, state topic and DLQ, and compares what the workers export with the ground truth
that streamkpi.generator.truth computes independently of the engine.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import orjson
import pytest
from _prometheus import RULE_FILES, PrometheusProcess
from _workers import Samples, WorkerProcess, http_json, read_all, read_topic, wait_for
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streamkpi.config import load_settings
from streamkpi.events import Kind
from streamkpi.generator.stream import CURRENCY_RATES, GenConfig, Record, generate
from streamkpi.generator.truth import Truth, TruthParams, ground_truth
from streamkpi.kpis.spec import COMPONENTS, KPIS, Labels, kpi
from streamkpi.kpis.values import kpi_value
from streamkpi.localkafka import LocalKafka, create_topics
from streamkpi.web.model import Selection
from streamkpi.web.sources import PrometheusSource

PARTITIONS = 4
WINDOW = "24h"
# Engine settings shared by the workers and the ground truth. Short timers so carts,
# sessions and churn all resolve inside the generated span.
ENGINE_ENV = {
    "STREAMKPI_BUCKET_S": "60",
    "STREAMKPI_WINDOWS": "5m,1h,24h",
    "STREAMKPI_ALLOWED_LATENESS_S": "300",
    "STREAMKPI_DEDUP_HORIZON_S": "3600",
    "STREAMKPI_SESSION_GAP_S": "1800",
    "STREAMKPI_VISITOR_MEMORY_S": "86400",
    "STREAMKPI_EMAIL_MEMORY_S": "86400",
    "STREAMKPI_CUSTOMER_MEMORY_S": "86400",
    "STREAMKPI_CHURN_AFTER_S": "3600",
    "STREAMKPI_ABANDON_AFTER_S": "1800",
    "STREAMKPI_CURRENCY_RATES": orjson.dumps(
        {k: str(v) for k, v in CURRENCY_RATES.items()}
    ).decode(),
    "STREAMKPI_LABELS__MAX_CAMPAIGNS": "1000",
    "STREAMKPI_LABELS__MAX_PAGES": "1000",
    "STREAMKPI_IDLE_AFTER_S": "2",
    "STREAMKPI_CHECKPOINT_INTERVAL_S": "0.5",
    "STREAMKPI_TOPIC_PARTITIONS": str(PARTITIONS),
}


@dataclass(frozen=True)
class Stream:
    """The produced input: topic names, records and what the workers must end up with."""

    run: str
    topics: dict[Kind, str]
    records: list[Record]
    truth: Truth
    end_offsets: dict[TopicPartition, int]

    def env(self, kafka: LocalKafka, app_id: str, tmp: Path) -> dict[str, str]:
        env = {
            **ENGINE_ENV,
            "STREAMKPI_APP_ID": app_id,
            "STREAMKPI_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "STREAMKPI_TOPICS__DLQ": f"{app_id}-dlq",
            "STREAMKPI_TOPICS__SNAPSHOTS": f"{app_id}-snapshots",
            "STREAMKPI_SNAPSHOT_INTERVAL_S": "1",
            "STREAMKPI_DATA_DIR": str(tmp / app_id),
            "STREAMKPI_LOG_LEVEL": "warning",
        }
        for kind, topic in self.topics.items():
            env[f"STREAMKPI_TOPICS__{kind.value.upper()}"] = topic
        return env


def truth_params(now_s: float) -> TruthParams:
    """Return the truth's parameters for workers running with ENGINE_ENV."""
    with mock.patch.dict(os.environ, ENGINE_ENV):
        settings = load_settings()
    # The workers' idle advance raises every watermark to about "now - lateness"; the
    # generated span ends early enough (SPAN_END_S) that every timer is due before that.
    return TruthParams.from_settings(settings, now_s=now_s, final_watermark_s=now_s - 300)


@pytest.fixture(scope="module")
def stream(kafka_broker: LocalKafka) -> Stream:
    now = time.time()
    # The span ends 2 h ago: longer than churn_after + lateness, so all of its timers fire.
    config = GenConfig.for_test(seed=7, start_s=now - 8 * 3600, partitions=PARTITIONS)
    assert config.start_s + config.duration_s <= now - 3600 - 300
    records = generate(config)
    assert len(records) >= 100_000
    truth = ground_truth(records, truth_params(now))
    run = uuid.uuid4().hex[:6]
    topics = {kind: f"{kind.value}-{run}" for kind in Kind}
    ends = asyncio.run(_produce(kafka_broker.bootstrap_servers, topics, records))
    return Stream(run, topics, records, truth, ends)


async def _produce(
    bootstrap: str, topics: dict[Kind, str], records: list[Record]
) -> dict[TopicPartition, int]:
    await create_topics(bootstrap, list(topics.values()), partitions=PARTITIONS)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024, acks="all"
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topics[r.kind], r.value, key=r.key, partition=r.partition)
            for r in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    counts = Counter((topics[r.kind], r.partition) for r in records)
    return {
        TopicPartition(t, p): counts.get((t, p), 0)
        for t in topics.values()
        for p in range(PARTITIONS)
    }


def expected_24h(truth: Truth, now_s: float) -> dict[tuple[str, tuple[str, ...]], float]:
    """Return every non-zero component value of the 24 h window, from the ground truth."""
    out: dict[tuple[str, tuple[str, ...]], float] = {}
    for (component, bucket_start, labels), value in truth.buckets.items():
        if bucket_start > now_s - 86400 + 60:  # the whole generated span is inside 24 h
            out[(component, labels)] = out.get((component, labels), 0.0) + float(value)
    # active at the window's start = active now - activations in the window + churns in it
    for labels, active in truth.active_customers.items():
        start = (
            active
            - out.get(("customer_activations", labels), 0.0)
            + out.get(("churned_customers", labels), 0.0)
        )
        out[("active_customers", labels)] = start
    return {k: v for k, v in out.items() if v != 0}


def exported_24h(samples: list[Samples | None]) -> dict[tuple[str, tuple[str, ...]], float]:
    """Sum the 24 h window series of every KPI component over ``samples`` (one per worker)."""
    families = {c.metric: c for c in COMPONENTS}
    out: dict[tuple[str, tuple[str, ...]], float] = {}
    for worker_samples in samples:
        assert worker_samples is not None, "a worker's /metrics did not answer"
        for (name, labels), value in worker_samples.items():
            component = families.get(name)
            if component is None:
                continue
            label_map = dict(labels)
            if label_map.pop("window") != WINDOW:
                continue
            if component.labels is Labels.page:
                values: tuple[str, ...] = (label_map["page"],)
            else:
                values = (label_map["campaign"], label_map["channel"])
            key = (component.name, values)
            out[key] = out.get(key, 0.0) + value
    return {k: v for k, v in out.items() if v != 0}


def diff(expected: dict[Any, float], got: dict[Any, float]) -> list[str]:
    keys = sorted(set(expected) | set(got), key=str)
    return [
        f"{k}: expected {expected.get(k)} got {got.get(k)}"
        for k in keys
        if abs(expected.get(k, 0.0) - got.get(k, 0.0)) > 1e-6 * max(1.0, abs(expected.get(k, 0.0)))
    ]


async def committed_offsets(
    bootstrap: str, group: str, tps: list[TopicPartition]
) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        return {tp: (await consumer.committed(tp)) or 0 for tp in tps}
    finally:
        await consumer.stop()


async def wait_until_exact(
    stream: Stream, workers: list[WorkerProcess], kafka: LocalKafka, group: str
) -> None:
    """Wait until the workers' export equals the truth and offsets reach every end."""
    expected = expected_24h(stream.truth, time.time())
    last: list[str] = []

    def matches() -> bool:
        nonlocal last
        samples = [w.metrics() for w in workers]
        if any(m is None for m in samples):
            last = ["a worker's /metrics does not answer yet"]
            return False
        last = diff(expected, exported_24h(samples))
        return not last

    def explain() -> str:
        logs = "\n".join(w.log_tail(30) for w in workers)
        return f"{len(last)} differences, e.g.\n" + "\n".join(last[:25]) + "\n" + logs

    await wait_for(
        matches, timeout_s=240, what="exported counts == ground truth", on_timeout=explain
    )

    async def caught_up() -> bool:
        got = await committed_offsets(kafka.bootstrap_servers, group, list(stream.end_offsets))
        return got == stream.end_offsets

    await wait_for(caught_up, timeout_s=60, what="committed offsets at the end of every input")


async def test_one_worker_counts_exactly(
    stream: Stream, kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    app_id = f"exact-{stream.run}"
    worker = WorkerProcess(stream.env(kafka_broker, app_id, tmp_path), tmp_path / "w.log")
    worker.start()
    try:
        await wait_until_exact(stream, [worker], kafka_broker, app_id)
        m = worker.metrics()
        assert m is not None
        for (kind, outcome), count in stream.truth.outcomes.items():
            key = ("streamkpi_events_total", (("outcome", outcome), ("topic", kind)))
            assert m.get(key) == count, (kind, outcome)
        # Pipeline health: everything read, every owned partition has a watermark.
        for kind in Kind:
            for partition in range(PARTITIONS):
                labels = (("partition", str(partition)), ("topic", kind.value))
                assert m.get(("streamkpi_consumer_lag", labels)) == 0, labels
                assert m.get(("streamkpi_watermark_seconds", labels)), labels
        assert m.get(("streamkpi_owned_partitions", ())) == PARTITIONS
        # /kpis answers from the same state: exact components, ratios as the truth's.
        document = http_json(f"http://127.0.0.1:{worker.web_port}/kpis?window=24h")
        assert document["partitions"] == list(range(PARTITIONS))
        # A repeated window is a 400 with the reason, not the first window (#12).
        repeated = f"http://127.0.0.1:{worker.web_port}/kpis?window=5m&window=1h"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(repeated, timeout=10)
        assert refused.value.code == 400
        assert orjson.loads(refused.value.read()) == {
            "error": "parameter 'window' is given more than once ('5m', '1h'); give it once"
        }
        expected = expected_24h(stream.truth, time.time())
        truth_rows: dict[tuple[str, str], dict[str, float]] = {}
        for (component, labels), value in expected.items():
            if len(labels) == 2:
                truth_rows.setdefault(labels, {})[component] = value
        got_rows = {(r["campaign"], r["channel"]): r for r in document["campaigns"]}
        assert set(got_rows) == set(truth_rows)
        for labels, components in truth_rows.items():
            row = got_rows[labels]
            got_components = {k: float(v) for k, v in row["components"].items() if v}
            assert got_components == pytest.approx(components, rel=1e-12), labels
            for name, value in row["kpis"].items():
                want = kpi_value(kpi(name), components)
                assert (value is None) == (want is None), (labels, name)
                if want is not None:
                    assert abs(value - want) <= 1e-9 * max(1.0, abs(want)), (labels, name)
        # The snapshot topic: latest record per key, summed over partitions = the truth.
        exact_at = time.time()
        snapshot_rows: dict[tuple[str, str], dict[str, float]] = {}

        async def fresh_snapshots() -> bool:
            latest: dict[bytes, bytes | None] = {}
            for key, value in await read_all(
                kafka_broker.bootstrap_servers, f"{app_id}-snapshots", PARTITIONS
            ):
                assert key is not None
                latest[key] = value
            snapshot_rows.clear()
            for value in latest.values():
                if value is None:
                    continue
                record = orjson.loads(value)
                if record["window"] != "24h" or "campaign" not in record:
                    continue
                if record["reference_s"] < exact_at:
                    return False  # written before the counts were complete: wait for more
                cell = snapshot_rows.setdefault((record["campaign"], record["channel"]), {})
                for name, number in record["components"].items():
                    cell[name] = cell.get(name, 0.0) + float(number)
            return bool(snapshot_rows)

        await wait_for(fresh_snapshots, timeout_s=30, what="snapshots newer than the exact counts")
        assert set(snapshot_rows) == set(truth_rows)
        for labels, components in truth_rows.items():
            got = {k: v for k, v in snapshot_rows[labels].items() if v}
            assert got == pytest.approx(components, rel=1e-12), labels
        # The dead-letter topic holds exactly the invalid and the late records, once each.
        expected_reasons = Counter(
            {(kind, reason): n for (kind, reason), n in stream.truth.invalid_reasons.items()}
        )
        for (kind, outcome), n in stream.truth.outcomes.items():
            if outcome == "late" and n:
                expected_reasons[(kind, "late")] += n
        letters = await read_topic(
            kafka_broker.bootstrap_servers,
            f"{app_id}-dlq",
            PARTITIONS,
            sum(expected_reasons.values()),
        )
        kind_of = {topic: kind.value for kind, topic in stream.topics.items()}
        got_reasons = Counter()
        sources = set()
        for _key, value, _headers in letters:
            letter = orjson.loads(value)
            source = letter["source"]
            got_reasons[(kind_of[source["topic"]], letter["reason"])] += 1
            sources.add((source["topic"], source["partition"], source["offset"]))
        assert len(sources) == len(letters), "a record was dead-lettered twice"
        assert got_reasons == +expected_reasons
    finally:
        assert worker.stop() == 0, worker.log_tail()


async def progress(kafka: LocalKafka, group: str, stream: Stream) -> float:
    got = await committed_offsets(kafka.bootstrap_servers, group, list(stream.end_offsets))
    return sum(got.values()) / sum(stream.end_offsets.values())


async def test_sigkilled_worker_restarts_without_loss_or_double_count(
    stream: Stream, kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    app_id = f"crash-{stream.run}"
    env = stream.env(kafka_broker, app_id, tmp_path)
    worker = WorkerProcess(env, tmp_path / "w.log")
    # Three kills at seeded random points of the committed progress (#12), each at least
    # 5 points after the previous one so every restart counts something before it dies.
    rng = random.Random(12)
    kills = [0.1 + 0.15 * i + rng.uniform(0.0, 0.1) for i in range(3)]
    for fraction in kills:
        worker.start()

        async def reached(fraction: float = fraction) -> bool:
            return await progress(kafka_broker, app_id, stream) >= fraction

        await wait_for(
            reached, timeout_s=180, what=f"{fraction:.0%} committed", on_timeout=worker.log_tail
        )
        worker.stop(signal.SIGKILL)
    assert await progress(kafka_broker, app_id, stream) < 1.0, "the kills came too late to matter"
    worker.start()
    try:
        await wait_until_exact(stream, [worker], kafka_broker, app_id)
    finally:
        assert worker.stop() == 0, worker.log_tail()


async def test_two_workers_add_up_with_one_restarted(
    stream: Stream, kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    app_id = f"scale-{stream.run}"
    env = stream.env(kafka_broker, app_id, tmp_path)
    first = WorkerProcess(env, tmp_path / "w1.log")
    second = WorkerProcess(env, tmp_path / "w2.log")
    first.start()
    second.start()
    try:

        async def reached() -> bool:
            return await progress(kafka_broker, app_id, stream) >= 0.3

        await wait_for(reached, timeout_s=180, what="30% committed", on_timeout=first.log_tail)
        assert second.stop() == 0, second.log_tail()
        second.start()
        await wait_until_exact(stream, [first, second], kafka_broker, app_id)
        await check_recording_rules(stream, [first, second], tmp_path / "prometheus")
    finally:
        codes = [first.stop(), second.stop()]
    assert codes == [0, 0], first.log_tail() + second.log_tail()


def truth_components(
    stream: Stream, key: Callable[[tuple[str, ...]], tuple[str, ...]]
) -> dict[tuple[str, ...], dict[str, float]]:
    """Sum the truth's 24 h component values by ``key`` of their (campaign, channel)."""
    out: dict[tuple[str, ...], dict[str, float]] = {}
    for (component, labels), value in expected_24h(stream.truth, time.time()).items():
        if component in {c.name for c in COMPONENTS if c.labels is Labels.page}:
            continue
        cell = out.setdefault(key(labels), {})
        cell[component] = cell.get(component, 0.0) + value
    return out


async def check_cluster_page_source(stream: Stream, url: str, *, workers: int) -> None:
    """The live page's cluster-wide source (#16) equals the truth over every worker.

    It reads the component gauges of all workers from Prometheus, summed there, and divides
    as /kpis does: overall and for one campaign, every campaign x channel KPI.
    """
    source = PrometheusSource(url, job="streamkpi", step_s=5, history_s=60)
    kpis = [k for k in KPIS if k.labels is Labels.campaign_channel]
    by_campaign = truth_components(stream, lambda labels: (labels[0],))
    campaign = max(by_campaign, key=lambda c: by_campaign[c].get("sessions", 0))[0]
    for selection, truth in (
        (Selection(WINDOW), truth_components(stream, lambda labels: ())[()]),
        (Selection(WINDOW, campaign=campaign), by_campaign[(campaign,)]),
    ):
        view = await source.view(selection, time.time())
        got = view.document["overall"]["kpis"]
        for k in kpis:
            want, have = kpi_value(k, truth), got[k.name]
            assert (want is None) == (have is None), (selection, k.name, want, have)
            if want is not None and have is not None:
                assert abs(want - have) <= 1e-9 * max(1, abs(want)), (selection, k.name, want, have)
        assert campaign in view.campaigns
        assert view.health.workers == workers
        assert view.trend, "no trend from Prometheus's range query"
        assert "Every worker" in view.scope


async def check_recording_rules(
    stream: Stream, workers: list[WorkerProcess], workdir: Path
) -> None:
    """A real Prometheus scraping both workers computes every ratio KPI as the truth does."""
    prometheus = PrometheusProcess(
        workdir, [f"127.0.0.1:{w.web_port}" for w in workers], RULE_FILES
    )
    prometheus.start()
    try:
        levels: dict[str, tuple[tuple[str, ...], Callable[[tuple[str, ...]], tuple[str, ...]]]] = {
            "overall": ((), lambda labels: ()),
            "channel": (("channel",), lambda labels: (labels[1],)),
            "campaign_channel": (("campaign", "channel"), lambda labels: labels),
        }
        ratio_kpis = [k for k in KPIS if k.is_ratio and k.labels is Labels.campaign_channel]

        def differences() -> list[str]:
            problems = []
            for level, (names, key) in levels.items():
                truth = truth_components(stream, key)
                for k in ratio_kpis:
                    expected = {labels: kpi_value(k, comps) for labels, comps in truth.items()}
                    expected = {labels: v for labels, v in expected.items() if v is not None}
                    got = {
                        tuple(sample_labels[n] for n in names): value
                        for sample_labels, value in prometheus.query(
                            f"{level}:streamkpi_{k.name}:ratio24h"
                        )
                    }
                    for labels in set(expected) | set(got):
                        want, have = expected.get(labels), got.get(labels)
                        if (
                            want is None
                            or have is None
                            or abs(want - have) > 1e-9 * max(1, abs(want))
                        ):
                            problems.append(
                                f"{level}:{k.name}{labels}: truth {want}, prometheus {have}"
                            )
            return problems

        last: list[str] = []

        def agree() -> bool:
            nonlocal last
            # Until both workers have been scraped, rules see half the data: poll.
            last = differences()
            return not last

        await wait_for(
            agree,
            timeout_s=90,
            what="recording rules == truth",
            on_timeout=lambda: f"{len(last)} differences:\n" + "\n".join(last[:30]),
        )
        await check_cluster_page_source(stream, prometheus.url, workers=len(workers))
    finally:
        prometheus.stop()
