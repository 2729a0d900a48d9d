"""The worker's core loop around the pure engine: parse, count, checkpoint, restore.

A worker owns partition *p* of every input topic together (Faust assigns co-partitioned
topics that way) and keeps one :class:`PartitionEngine` per owned partition. Records are
never acked to Faust (the streams are ``noack``): offsets are committed only by the
checkpoint transaction of :mod:`streamkpi.statestore`, together with the state they
produced. On (re)assignment an engine is rebuilt from the state topic and records below
its recorded offsets are skipped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from streamkpi.config import Settings
from streamkpi.dlq import DeadLetter, dead_letter_headers, encode_dead_letter
from streamkpi.events import Event, Kind, ParseContext, Rejection, parse
from streamkpi.exporter.pipeline import Outcome, PipelineMetrics
from streamkpi.kpis.config import EngineConfig
from streamkpi.kpis.engine import PartitionEngine
from streamkpi.statestore import Checkpoint, OutRecord, StateStore

__all__ = ["Pipeline", "SourceRecord"]

log = logging.getLogger(__name__)

EXIT_STATE_LOST = 70  # EX_SOFTWARE: in-memory state no longer matches what Kafka holds


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """The parts of a consumed Kafka record the pipeline needs."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes


@dataclass
class _PartitionClock:
    """When each kind of a partition last delivered a record (monotonic seconds)."""

    last_record: dict[Kind, float] = field(default_factory=dict)


class Pipeline:
    """Owns the engines of this worker's partitions and their checkpoints."""

    def __init__(
        self,
        settings: Settings,
        metrics: PipelineMetrics,
        store: StateStore,
        *,
        owned: Callable[[], set[int]],
        end_offsets: Callable[[list[TopicPartition]], Any],
        parse_ctx: ParseContext,
    ) -> None:
        """Wire settings, counters, the state store and ownership/offset probes."""
        self.settings = settings
        self.metrics = metrics
        self.store = store
        self.config = EngineConfig.from_settings(settings)
        self.parse_ctx = parse_ctx
        self._owned = owned
        self._end_offsets = end_offsets
        self.engines: dict[int, PartitionEngine] = {}
        self._restoring: dict[int, asyncio.Future[PartitionEngine]] = {}
        self._clocks: dict[int, _PartitionClock] = {}
        self._pending: list[OutRecord] = []
        self._committed_offsets: dict[TopicPartition, int] = {}
        self._lock = asyncio.Lock()
        topics = settings.topics
        self.topic_of: dict[Kind, str] = {
            Kind.pageviews: topics.pageviews,
            Kind.emails: topics.emails,
            Kind.orders: topics.orders,
            Kind.adspend: topics.adspend,
            Kind.surveys: topics.surveys,
        }
        self.replayed = 0
        self.checkpoints = 0
        self.checkpoint_seconds = 0.0

    # -- records ---------------------------------------------------------------------------

    async def handle(self, kind: Kind, record: SourceRecord) -> Outcome | None:
        """Process one record; return its outcome, or None if it is not ours to count."""
        if record.partition not in self._owned():
            # Buffered before a revocation: the new owner reads it from the committed offset.
            return None
        engine = await self.engine(record.partition)
        if record.offset < engine.next_offset(kind):
            self.replayed += 1  # already in the restored state
            return None
        clock = self._clocks.setdefault(record.partition, _PartitionClock())
        clock.last_record[kind] = time.monotonic()
        result = parse(kind, record.value, self.parse_ctx, time.time())
        if isinstance(result, Rejection):
            engine.record_offset(kind, record.offset)
            self._dead_letter(kind, record, result.reason.value, result.detail)
            self.metrics.count(kind.value, Outcome.invalid)
            return Outcome.invalid
        outcome = engine.process(kind, result, record.offset)
        self.metrics.count(kind.value, outcome)
        if outcome is Outcome.late:
            self._dead_letter(kind, record, "late", _late_detail(result, engine.watermark(kind)))
        return outcome

    def _dead_letter(self, kind: Kind, record: SourceRecord, reason: str, detail: str) -> None:
        letter = DeadLetter(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp_ms,
            key=record.key,
            value=record.value,
            reason=reason,
            detail=detail,
        )
        value = encode_dead_letter(
            letter, max_value_bytes=self.settings.max_event_bytes, now_s=time.time()
        )
        self._pending.append(
            OutRecord(self.settings.topics.dlq, record.key, value, dead_letter_headers(letter))
        )
        self.metrics.dead_lettered(kind.value, reason)

    # -- ownership -------------------------------------------------------------------------

    async def engine(self, partition: int) -> PartitionEngine:
        """Return the engine of ``partition``, restoring it from the state topic first."""
        engine = self.engines.get(partition)
        if engine is not None:
            return engine
        future = self._restoring.get(partition)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._restoring[partition] = future
            try:
                started = time.monotonic()
                entries = await self.store.read(partition)
                engine = PartitionEngine.restore(partition, self.config, entries)
                log.info(
                    "restored partition %d: %d entries in %.2fs",
                    partition,
                    len(entries),
                    time.monotonic() - started,
                )
                self.engines[partition] = engine
                future.set_result(engine)
            except BaseException as exc:
                future.set_exception(exc)
                raise
            finally:
                del self._restoring[partition]
            return engine
        return await future

    async def on_revoked(self, partitions: set[int]) -> None:
        """Checkpoint, then forget the engines of ``partitions`` (another worker takes them)."""
        await self.checkpoint()
        for partition in partitions:
            self.engines.pop(partition, None)
            self._clocks.pop(partition, None)
        for tp in [tp for tp in self._committed_offsets if tp.partition in partitions]:
            del self._committed_offsets[tp]

    # -- checkpoints -----------------------------------------------------------------------

    async def advance_idle(self) -> None:
        """Let the watermark of idle, caught-up topic-partitions follow the clock."""
        now = time.monotonic()
        candidates: list[tuple[PartitionEngine, Kind, TopicPartition]] = []
        for partition, engine in list(self.engines.items()):
            clock = self._clocks.setdefault(partition, _PartitionClock())
            for kind, topic in self.topic_of.items():
                last = clock.last_record.setdefault(kind, now)
                if now - last >= self.settings.idle_after_s:
                    candidates.append((engine, kind, TopicPartition(topic, partition)))
        if not candidates:
            return
        ends = await self._end_offsets([tp for _, _, tp in candidates])
        wall = time.time()
        for engine, kind, tp in candidates:
            end = ends.get(tp)
            # Only when nothing is left to read: otherwise this would make records late that
            # are merely waiting behind a slow consumer.
            if end is not None and engine.next_offset(kind) >= end:
                engine.advance_watermark(kind, wall - self.settings.allowed_lateness_s)

    def _take_checkpoint(self) -> Checkpoint:
        entries = {}
        offsets: dict[TopicPartition, int] = {}
        for partition, engine in self.engines.items():
            dirty = engine.take_dirty()
            if dirty:
                entries[partition] = dirty
            for kind, topic in self.topic_of.items():
                offset = engine.next_offset(kind)
                tp = TopicPartition(topic, partition)
                if offset > 0 and self._committed_offsets.get(tp) != offset:
                    offsets[tp] = offset
        records, self._pending = self._pending, []
        return Checkpoint(entries=entries, offsets=offsets, records=records)

    async def checkpoint(self) -> None:
        """Commit changed state, dead letters and offsets in one transaction."""
        async with self._lock:
            # Taken without an await in between: entries and offsets describe one instant.
            checkpoint = self._take_checkpoint()
            if checkpoint.empty:
                return
            started = time.monotonic()
            try:
                await self.store.commit(checkpoint)
            except Exception:
                # The taken entries are no longer dirty in memory but not in Kafka either:
                # carrying on would persist a state with holes. Restart from Kafka instead.
                log.critical("checkpoint failed; exiting so the state is rebuilt", exc_info=True)
                os._exit(EXIT_STATE_LOST)
            self._committed_offsets.update(checkpoint.offsets)
            self.checkpoints += 1
            self.checkpoint_seconds += time.monotonic() - started

    def window_values(self, reference_s: float) -> Iterator[tuple[str, str, tuple[str, ...], Any]]:
        """Yield every owned engine's window values (not yet summed across partitions)."""
        owned = self._owned()
        for partition, engine in list(self.engines.items()):
            if partition in owned:
                yield from engine.window_values(reference_s)


def _late_detail(event: Event, watermark: float | None) -> str:
    return f"ts {event.ts_s:.3f} is behind the watermark {watermark or 0:.3f}"
