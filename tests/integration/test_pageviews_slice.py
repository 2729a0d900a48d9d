"""End to end on a real broker: pageviews in, exact counts on /metrics, exact DLQ records out."""

from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from _workers import WorkerProcess, read_topic, sample, wait_for
from aiokafka import AIOKafkaProducer

pytestmark = pytest.mark.integration

NOW_S = time.time()
PARTITIONS = 2


def pageview(n: int, **fields: Any) -> bytes:
    return orjson.dumps({"event_id": f"e{n}", "ts": NOW_S - 60, "visitor_id": f"v{n}", **fields})


def valid_events() -> tuple[list[bytes], dict[str, int]]:
    """Return valid pageviews and, independently, how many each channel must count."""
    events = (
        [pageview(i, channel="organic") for i in range(7)]
        + [pageview(100 + i, utm_medium="cpc", utm_source="google") for i in range(5)]  # paid
        + [pageview(200 + i) for i in range(3)]  # no medium, no referrer: direct
        + [pageview(300 + i, referrer="https://www.bing.com/search?q=x") for i in range(2)]
    )
    return events, {"organic": 7 + 2, "paid": 5, "direct": 3}


def invalid_events(max_bytes: int) -> list[tuple[bytes, str]]:
    """Return invalid pageviews with the reason each must be dead-lettered for."""
    return [
        (b"{not json", "invalid_json"),
        (b"[1, 2, 3]", "not_an_object"),
        (orjson.dumps({"event_id": "x1", "ts": NOW_S}), "missing_field"),
        (orjson.dumps({"event_id": "x2", "ts": "yesterday", "visitor_id": "v"}), "bad_ts"),
        (orjson.dumps({"event_id": "x3", "ts": NOW_S + 86400, "visitor_id": "v"}), "future_ts"),
        (pageview(999, page="/" + "a" * max_bytes), "too_large"),
    ]


async def test_pageviews_are_counted_and_invalid_ones_dead_lettered(
    kafka_broker: Any, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    pv_topic, dlq_topic = f"pv-{run}", f"dlq-{run}"
    max_bytes = 4096
    env = {
        "STREAMKPI_APP_ID": f"slice-{run}",
        "STREAMKPI_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
        "STREAMKPI_TOPICS__PAGEVIEWS": pv_topic,
        "STREAMKPI_TOPICS__EMAILS": f"em-{run}",
        "STREAMKPI_TOPICS__ORDERS": f"or-{run}",
        "STREAMKPI_TOPICS__ADSPEND": f"ad-{run}",
        "STREAMKPI_TOPICS__SURVEYS": f"su-{run}",
        "STREAMKPI_TOPICS__DLQ": dlq_topic,
        "STREAMKPI_TOPIC_PARTITIONS": str(PARTITIONS),
        "STREAMKPI_MAX_EVENT_BYTES": str(max_bytes),
        "STREAMKPI_DATA_DIR": str(tmp_path / "data"),
    }
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    try:
        valid, per_channel = valid_events()
        invalid = invalid_events(max_bytes)
        # The worker creates the topics; wait for its web server so producing never races that.
        await wait_for(
            lambda: worker.metrics() is not None,
            timeout_s=60,
            what="the worker's /metrics",
            on_timeout=worker.log_tail,
        )
        expected_dlq: dict[tuple[int, int], tuple[str, bytes, bytes]] = {}
        producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers)
        await producer.start()
        try:
            for i, value in enumerate(valid):
                await producer.send_and_wait(pv_topic, value, key=f"v{i}".encode())
            for i, (value, reason) in enumerate(invalid):
                key = f"bad{i}".encode()
                meta = await producer.send_and_wait(pv_topic, value, key=key)
                expected_dlq[(meta.partition, meta.offset)] = (reason, key, value)
        finally:
            await producer.stop()

        def counted() -> bool:
            m = worker.metrics()
            return sample(
                m, "streamkpi_events_total", topic="pageviews", outcome="accepted"
            ) == len(valid) and sample(
                m, "streamkpi_events_total", topic="pageviews", outcome="invalid"
            ) == len(invalid)

        await wait_for(counted, timeout_s=60, what="all events counted", on_timeout=worker.log_tail)
        m = worker.metrics()
        for channel, count in per_channel.items():
            pageviews = sample(
                m, "streamkpi_pageviews", window="24h", campaign="none", channel=channel
            )
            assert pageviews == count, channel
        for outcome in ("duplicate", "late"):
            assert sample(m, "streamkpi_events_total", topic="pageviews", outcome=outcome) == 0
        for reason, _key, _value in expected_dlq.values():
            assert sample(m, "streamkpi_dead_letters_total", topic="pageviews", reason=reason) == 1

        records = await read_topic(
            kafka_broker.bootstrap_servers, dlq_topic, PARTITIONS, len(invalid)
        )
        got: dict[tuple[int, int], tuple[str, bytes, bytes]] = {}
        for key, value, headers in records:
            letter = orjson.loads(value)
            source = letter["source"]
            assert source["topic"] == pv_topic
            assert letter["detail"]
            assert headers["streamkpi.reason"] == letter["reason"].encode()
            original = base64.b64decode(letter["value_b64"])
            if letter["reason"] == "too_large":
                assert letter["value_truncated"] is True
                assert letter["value_size"] > max_bytes
            else:
                assert letter["value_truncated"] is False
            assert key == base64.b64decode(letter["key_b64"])
            got[(source["partition"], source["offset"])] = (letter["reason"], key, original)
        truncated = {k: (r, key, v[:max_bytes]) for k, (r, key, v) in expected_dlq.items()}
        assert got == truncated
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()
