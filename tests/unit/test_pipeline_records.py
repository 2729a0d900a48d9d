"""The pipeline's record path, restores and checkpoints, with a fake state store (no Kafka)."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from streamkpi import jsonbytes
from streamkpi.app import parse_context
from streamkpi.config import Settings
from streamkpi.events import Kind
from streamkpi.exporter.pipeline import Outcome, PipelineMetrics
from streamkpi.pipeline import Pipeline, SourceRecord
from streamkpi.statestore import Checkpoint, Entry

TOPIC = "pageviews"


class FakeStore:
    """Keeps committed entries per partition; ``gate`` (if set) holds reads and commits."""

    def __init__(self) -> None:
        self.state: dict[int, list[Entry]] = {}
        self.commits: list[Checkpoint] = []
        self.gate: asyncio.Event | None = None

    async def read(self, partition: int) -> list[Entry]:
        if self.gate is not None:
            await self.gate.wait()
        return list(self.state.get(partition, []))

    async def commit(self, checkpoint: Checkpoint) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.commits.append(checkpoint)
        for partition, entries in checkpoint.entries.items():
            self.state.setdefault(partition, []).extend(entries)


def make_pipeline(
    owned: set[int],
    store: FakeStore,
    ends: dict[TopicPartition, int] | None = None,
    **settings: Any,
) -> tuple[Pipeline, CollectorRegistry]:
    s = Settings(topic_partitions=4, **settings)
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry, [kind.value for kind in Kind])

    async def end_offsets(tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: (ends or {}).get(tp, 0) for tp in tps}

    pipeline = Pipeline(
        s,
        metrics,
        store,  # type: ignore[arg-type]
        owned=lambda: owned,
        end_offsets=end_offsets,
        parse_ctx=parse_context(s),
    )
    return pipeline, registry


def pageview(offset: int, partition: int = 0, *, value: bytes | None = None) -> SourceRecord:
    if value is None:
        value = orjson.dumps(
            {"event_id": f"e{offset}", "ts": time.time() - 60, "visitor_id": f"v{offset}"}
        )
    return SourceRecord(TOPIC, partition, offset, 1_764_158_400_000, b"k", value)


def events(registry: CollectorRegistry, outcome: Outcome) -> float | None:
    return registry.get_sample_value(
        "streamkpi_events_total", {"topic": "pageviews", "outcome": outcome.value}
    )


async def test_a_batch_is_counted_and_its_rejections_dead_lettered() -> None:
    pipeline, registry = make_pipeline({0}, FakeStore())
    await pipeline.engine(0)
    tombstone = SourceRecord(TOPIC, 0, 2, None, None, None)
    batch = [pageview(0), pageview(1, value=b"not json"), tombstone, pageview(3)]
    outcomes = pipeline.process(Kind.pageviews, 0, batch)
    assert outcomes == {Outcome.accepted: 2, Outcome.invalid: 2}
    assert pipeline.engines[0].next_offset(Kind.pageviews) == 4
    assert events(registry, Outcome.accepted) == 2
    assert events(registry, Outcome.invalid) == 2
    letters = [orjson.loads(r.value) for r in pipeline._pending]
    assert [(d["reason"], d["source"]["offset"]) for d in letters] == [
        ("invalid_json", 1),
        ("invalid_json", 2),
    ]
    assert letters[0]["source"]["timestamp_ms"] == 1_764_158_400_000
    assert letters[1]["source"]["timestamp_ms"] is None
    assert letters[1]["key_b64"] is None


async def test_a_cart_past_the_open_cart_cap_is_dead_lettered_out_of_range() -> None:
    pipeline, registry = make_pipeline({0}, FakeStore(), max_open_carts=2)
    await pipeline.engine(0)
    now = time.time() - 60
    batch = [
        SourceRecord(
            "orders",
            0,
            offset,
            None,
            b"c",
            orjson.dumps(
                {
                    "event_id": f"o{offset}",
                    "ts": now,
                    "customer_id": "c",
                    "type": "cart_created",
                    "cart_id": f"k{offset}",
                }
            ),
        )
        for offset in range(3)
    ]
    assert pipeline.process(Kind.orders, 0, batch) == {Outcome.accepted: 2, Outcome.invalid: 1}
    [letter] = [orjson.loads(r.value) for r in pipeline._pending]
    assert (letter["reason"], letter["source"]["offset"]) == ("out_of_range", 2)
    assert "max_open_carts is 2" in letter["detail"]
    assert pipeline.engines[0].next_offset(Kind.orders) == 3
    assert (
        registry.get_sample_value(
            "streamkpi_dead_letters_total", {"topic": "orders", "reason": "out_of_range"}
        )
        == 1
    )


async def test_records_not_ours_are_skipped() -> None:
    pipeline, registry = make_pipeline({0, 1}, FakeStore())
    await pipeline.engine(0)
    # Partition 1 is owned but not restored, partition 2 is not owned: nothing is counted.
    assert pipeline.process(Kind.pageviews, 1, [pageview(0, 1)]) == {}
    assert pipeline.process(Kind.pageviews, 2, [pageview(0, 2)]) == {}
    assert events(registry, Outcome.accepted) == 0


async def test_a_replayed_prefix_is_skipped() -> None:
    pipeline, _ = make_pipeline({0}, FakeStore())
    await pipeline.engine(0)
    pipeline.process(Kind.pageviews, 0, [pageview(i) for i in range(4)])
    outcomes = pipeline.process(Kind.pageviews, 0, [pageview(i) for i in range(2, 6)])
    assert outcomes == {Outcome.accepted: 2}
    assert pipeline.replayed == 2
    assert pipeline.engines[0].next_offset(Kind.pageviews) == 6


async def test_a_restarted_pipeline_resumes_from_the_checkpoint() -> None:
    store = FakeStore()
    first, _ = make_pipeline({0}, store)
    await first.engine(0)
    first.process(Kind.pageviews, 0, [pageview(i) for i in range(3)])
    await first.checkpoint()
    assert store.commits[-1].offsets == {TopicPartition(TOPIC, 0): 3}
    second, _ = make_pipeline({0}, store)
    await second.restore_owned()
    outcomes = second.process(Kind.pageviews, 0, [pageview(i) for i in range(5)])
    assert outcomes == {Outcome.accepted: 2}
    assert second.replayed == 3


async def test_restore_owned_restores_partitions_that_get_no_records() -> None:
    pipeline, _ = make_pipeline({0, 3}, FakeStore())
    await pipeline.restore_owned()
    assert set(pipeline.engines) == {0, 3}


async def test_a_restore_raced_by_a_revocation_is_not_kept() -> None:
    store = FakeStore()
    store.gate = asyncio.Event()
    owned = {0}
    pipeline, _ = make_pipeline(owned, store)
    restoring = asyncio.create_task(pipeline.engine(0))
    await asyncio.sleep(0)
    owned.discard(0)  # as app.on_revoked does, before calling the pipeline
    revoking = asyncio.create_task(pipeline.on_revoked({0}))
    await asyncio.sleep(0)
    store.gate.set()
    await asyncio.gather(restoring, revoking)
    # What was read may predate the next owner's checkpoints: it must be read again.
    assert 0 not in pipeline.engines
    owned.add(0)
    await pipeline.restore_owned()
    assert 0 in pipeline.engines


async def test_committing_is_visible_and_counts_what_overlaps_it() -> None:
    store = FakeStore()
    pipeline, _ = make_pipeline({0}, store)
    await pipeline.engine(0)
    pipeline.process(Kind.pageviews, 0, [pageview(0)])
    store.gate = asyncio.Event()
    committing = asyncio.create_task(pipeline.checkpoint())
    await asyncio.sleep(0)
    assert pipeline.committing
    pipeline.process(Kind.pageviews, 0, [pageview(1), pageview(2)])
    assert pipeline.counted_while_committing == 2
    store.gate.set()
    await pipeline.wait_committed()
    await committing
    assert not pipeline.committing


async def test_an_idle_caught_up_partition_advances_its_watermark() -> None:
    ends = {TopicPartition(TOPIC, 0): 1}
    pipeline, _ = make_pipeline({0}, FakeStore(), ends, idle_after_s=0.05)
    await pipeline.engine(0)
    pipeline.process(Kind.pageviews, 0, [pageview(0)])
    before = pipeline.engines[0].watermark(Kind.pageviews)
    assert before is not None
    await pipeline.advance_idle()  # first sight of this offset: not idle yet
    assert pipeline.engines[0].watermark(Kind.pageviews) == before
    await asyncio.sleep(0.06)
    await pipeline.advance_idle()
    after = pipeline.engines[0].watermark(Kind.pageviews)
    assert after is not None
    assert after == pytest.approx(time.time() - pipeline.settings.allowed_lateness_s, abs=5)
    assert after > before


def test_kept_json_holds_only_its_bytes() -> None:
    value = jsonbytes.dumps([1.5, 2, "abc"])
    assert value == orjson.dumps([1.5, 2, "abc"])
    tracemalloc.start()
    try:
        kept = [jsonbytes.dumps([1.5, i, "abc"]) for i in range(1000)]
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(kept) == 1000
    assert current < 1000 * 200  # orjson's own buffers would be >= 1000 x 4 KiB
