"""A hostile producer against a real worker on a real broker (#12's reproductions).

Every record of issue #12 that crashed a worker, vanished from the DLQ, lost a count
after a restart or blew up /metrics is sent to one `streamkpi worker` process, beside
valid events whose counts are known in advance. The worker must keep running, dead-letter
each hostile record with its reason, count the valid ones exactly, keep /metrics small
and free of query strings, and after a restart still know its carts and its event ids.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from _workers import WorkerProcess, read_all, sample, wait_for
from aiokafka import AIOKafkaProducer

pytestmark = pytest.mark.integration

NOW_S = time.time()
PARTITIONS = 2
LONG_IDS = [f"{n:04d}" + "\x01" * 252 for n in range(1000)]  # 256 chars, 6 JSON bytes each
# One customer's open carts, with ids JSON escapes to 1.5 KB: 800 made a 1.2 MB state
# entry that the broker refused, every checkpoint (worker exit 70, and again after each
# restart); max_open_carts is 50 by default.
CARTS = 800


def pageview(event_id: str, visitor: str = "v", **fields: Any) -> bytes:
    # json, not orjson: integers beyond 64 bits must reach the worker.
    body = {"event_id": event_id, "ts": NOW_S - 60, "visitor_id": visitor, **fields}
    return json.dumps(body).encode()


def hostile() -> list[tuple[str, bytes | None, bytes, str]]:
    """Return (topic kind, key, value, reason it must be dead-lettered for)."""
    engaged = {"type": "engagement"}
    records: list[tuple[str, bytes | None, bytes, str]] = [
        ("pageviews", b"v", pageview("pill", engaged_ms=2**64, **engaged), "out_of_range"),
        ("pageviews", b"v", pageview("sum1", engaged_ms=2**63, **engaged), "out_of_range"),
        ("pageviews", b"v", pageview("sum2", engaged_ms=2**63, **engaged), "out_of_range"),
        ("pageviews", b"k" * 600_000, b"x", "invalid_json"),
        ("pageviews", b"big", b"y" * 850_000, "too_large"),
    ]
    for n in range(400):  # distinct 30 KB campaign and page names
        value = pageview(f"long{n}", campaign=f"{n}" + "c" * 30_000, page=f"/{n}" + "p" * 30_000)
        records.append(("pageviews", b"v", value, "out_of_range"))
    for n in range(CARTS - 50):
        records.append(("orders", b"c", cart(50 + n), "out_of_range"))
    return records


def cart(n: int) -> bytes:
    body = {
        "event_id": f"cart{n}",
        "ts": NOW_S - 60,
        "customer_id": "c",
        "type": "cart_created",
        "cart_id": f"{n:04d}" + "\x01" * 252,
        "campaign": "spring",
    }
    return orjson.dumps(body)


def http_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


async def test_a_hostile_producer_stops_nothing_and_loses_nothing(
    kafka_broker: Any, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    topics = {kind: f"{kind}-{run}" for kind in ("pageviews", "emails", "orders", "adspend")}
    dlq = f"dlq-{run}"
    env = {
        "STREAMKPI_APP_ID": f"hostile-{run}",
        "STREAMKPI_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers,
        **{f"STREAMKPI_TOPICS__{kind.upper()}": name for kind, name in topics.items()},
        "STREAMKPI_TOPICS__SURVEYS": f"surveys-{run}",
        "STREAMKPI_TOPICS__DLQ": dlq,
        "STREAMKPI_TOPIC_PARTITIONS": str(PARTITIONS),
        "STREAMKPI_DATA_DIR": str(tmp_path / "data"),
    }
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_broker.bootstrap_servers, max_request_size=2_000_000
    )
    await producer.start()
    try:
        await wait_for(
            lambda: worker.metrics() is not None,
            timeout_s=90,
            what="the worker's /metrics",
            on_timeout=worker.log_tail,
        )
        bad = hostile()
        for kind, key, value, _ in bad:
            await producer.send_and_wait(topics[kind], value, key=key)
        valid_pageviews = [pageview(event_id) for event_id in LONG_IDS]
        pii = "/reset?email=jane@example.com&token=s3cr3t"
        valid_pageviews.append(pageview("pii", "w", page=pii))
        for value in valid_pageviews:
            await producer.send(topics["pageviews"], value, key=b"v")
        for n in range(50):
            await producer.send(topics["orders"], cart(n), key=b"c")
        await producer.flush()

        def counted(accepted_pv: int, duplicate_pv: int = 0) -> bool:
            m = worker.metrics()
            return (
                sample(m, "streamkpi_events_total", topic="pageviews", outcome="accepted")
                == accepted_pv
                and sample(m, "streamkpi_events_total", topic="pageviews", outcome="duplicate")
                == duplicate_pv
            )

        invalid = sum(1 for kind, *_ in bad if kind == "pageviews")
        await wait_for(
            lambda: (
                counted(len(valid_pageviews))
                and sample(
                    worker.metrics(), "streamkpi_events_total", topic="pageviews", outcome="invalid"
                )
                == invalid
            ),
            timeout_s=120,
            what="every pageview counted or refused",
            on_timeout=worker.log_tail,
        )
        text = http_text(f"http://127.0.0.1:{worker.web_port}/metrics")
        assert len(text.encode()) < 1_000_000
        kpis = http_text(f"http://127.0.0.1:{worker.web_port}/kpis?window=24h")
        for body in (text, kpis):
            for leak in ("email=", "s3cr3t", "ccccc"):
                assert leak not in body
        m = worker.metrics()
        assert sample(m, "streamkpi_landing_sessions", window="24h", page="/reset") == 1
        total = sample(m, "streamkpi_pageviews", window="24h", campaign="none", channel="direct")
        assert total == len(valid_pageviews)

        # Every refusal reached the DLQ (none vanished), once, with its reason.
        records: list[tuple[bytes | None, bytes | None]] = []

        def letters() -> list[dict[str, Any]]:
            return [orjson.loads(v) for _, v in records if v is not None]

        async def dlq_complete() -> bool:
            records[:] = await read_all(kafka_broker.bootstrap_servers, dlq, PARTITIONS)
            return len(records) >= len(bad)

        await wait_for(dlq_complete, timeout_s=60, what="every dead letter committed")
        got = sorted((d["source"]["topic"], d["reason"]) for d in letters())
        assert got == sorted((topics[kind], reason) for kind, _, _, reason in bad)
        [big_key] = [d for d in letters() if d.get("key_size") == 600_000]
        assert big_key["reason"] == "invalid_json"
        assert {d["detail"] for d in letters() if "open carts" in d["detail"]} == {
            "customer 'c' already has 50 open carts, max_open_carts is 50"
        }
        assert worker.stop() == 0, worker.log_tail()

        # A clean restart restores the carts and the remembered ids: a producer's retry of
        # the 1,000 long-id pageviews is a duplicate, not 1,000 more.
        worker.start()
        await wait_for(
            lambda: worker.metrics() is not None,
            timeout_s=90,
            what="the restarted worker's /metrics",
            on_timeout=worker.log_tail,
        )
        for event_id in LONG_IDS:
            await producer.send(topics["pageviews"], pageview(event_id), key=b"v")
        await producer.flush()
        await wait_for(
            lambda: counted(0, duplicate_pv=len(LONG_IDS)),
            timeout_s=120,
            what="the retried pageviews seen as duplicates",
            on_timeout=worker.log_tail,
        )
        m = worker.metrics()
        total = sample(m, "streamkpi_pageviews", window="24h", campaign="none", channel="direct")
        assert total == len(valid_pageviews)
        # The orders partition gets no record after the restart: it is restored by the
        # checkpoint timer, not by a record, hence a wait.
        await wait_for(
            lambda: (
                sample(
                    worker.metrics(),
                    "streamkpi_carts_created",
                    window="24h",
                    campaign="spring",
                    channel="none",
                )
                is not None
            ),
            timeout_s=30,
            what="the idle orders partition restored",
            on_timeout=worker.log_tail,
        )
        m = worker.metrics()
        assert (
            sample(m, "streamkpi_carts_created", window="24h", campaign="spring", channel="none")
            == 50
        )
        assert worker.stop() == 0, worker.log_tail()
    finally:
        await producer.stop()
        if worker.proc is not None and worker.proc.poll() is None:
            worker.stop()
