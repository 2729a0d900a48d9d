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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import TopicPartition

from streamkpi.config import Settings
from streamkpi.dlq import DeadLetter, dead_letter_headers, dlq_key, encode_dead_letter
from streamkpi.events import Event, Kind, ParseContext, Reason, Rejection, parse
from streamkpi.exporter.api import snapshot_records
from streamkpi.exporter.pipeline import Outcome, PipelineMetrics
from streamkpi.kpis.config import EngineConfig
from streamkpi.kpis.engine import PartitionEngine
from streamkpi.statestore import Checkpoint, OutRecord, StateStore

__all__ = ["Pipeline", "SourceMessage", "SourceRecord"]

log = logging.getLogger(__name__)

EXIT_STATE_LOST = 70  # EX_SOFTWARE: in-memory state no longer matches what Kafka holds


class SourceMessage(Protocol):
    """The parts of a consumed Kafka record the pipeline reads (aiokafka's ``ConsumerRecord``)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int | None: ...  # epoch milliseconds, as Kafka and aiokafka have it
    @property
    def key(self) -> Any: ...
    @property
    def value(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """A :class:`SourceMessage` made by hand (tests, tools)."""

    topic: str
    partition: int
    offset: int
    timestamp: int | None
    key: bytes | None
    value: bytes | None


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
        self._revocations: dict[int, int] = {}  # partition -> times revoked (stale restores)
        # (partition, kind) -> (next offset, monotonic time it was first seen) for idleness.
        self._progress: dict[tuple[int, Kind], tuple[int, float]] = {}
        self._pending: list[OutRecord] = []
        self._committed_offsets: dict[TopicPartition, int] = {}
        self._lock = asyncio.Lock()
        self._not_committing = asyncio.Event()
        self._not_committing.set()
        self.counted_while_committing = 0  # records processed since the commit began
        topics = settings.topics
        self.topic_of: dict[Kind, str] = {
            Kind.pageviews: topics.pageviews,
            Kind.emails: topics.emails,
            Kind.orders: topics.orders,
            Kind.adspend: topics.adspend,
            Kind.surveys: topics.surveys,
        }
        # The counter children, looked up once instead of by label values per record.
        self._counted = {
            (kind, outcome): metrics.events.labels(kind.value, outcome.value)
            for kind in Kind
            for outcome in Outcome
        }
        self._event_lag = {kind: metrics.event_lag.labels(kind.value) for kind in Kind}
        self.replayed = 0
        self.checkpoints = 0
        self.checkpoint_seconds = 0.0
        self._last_snapshot_s = 0.0
        self._snapshot_keys: dict[int, set[bytes]] = {}  # live snapshot keys per partition
        self.lag: dict[tuple[Kind, int], int] = {}  # records left to read, per owned partition
        # Process-local counters of engines this worker no longer holds (keeps them monotonic).
        self.retired_overflows: dict[str, int] = {}
        self.retired_dropped_writes = 0

    # -- records ---------------------------------------------------------------------------

    def owned(self) -> set[int]:
        """Return the partitions this worker owns now."""
        return self._owned()

    def process(
        self, kind: Kind, partition: int, records: Sequence[SourceMessage]
    ) -> dict[Outcome, int]:
        """Count consecutive records of one topic-partition; return how many had each outcome.

        Records are skipped when the partition is not owned (buffered before a revocation:
        the new owner reads them from the committed offset) or its engine is not restored
        (:meth:`engine` does that), and below the engine's next offset (already in the
        restored state). Synchronous: no coroutine per record, one clock read per batch.
        """
        outcomes: dict[Outcome, int] = {}
        engine = self.engines.get(partition)
        if engine is None or partition not in self._owned():
            return outcomes
        # Offsets only grow within a topic-partition, so only a prefix can be a replay.
        restored_up_to = engine.next_offset(kind)
        now_s = time.time()
        ctx = self.parse_ctx
        count = outcomes.get
        observe_lag = self._event_lag[kind].observe
        for record in records:
            offset = record.offset
            if offset < restored_up_to:
                self.replayed += 1
                continue
            value = record.value
            if not isinstance(value, bytes):
                value = b""  # a tombstone (null value): invalid_json
            result = parse(kind, value, ctx, now_s)
            if isinstance(result, Rejection):
                engine.record_offset(kind, offset)
                self._dead_letter(kind, record, value, result.reason.value, result.detail)
                outcomes[Outcome.invalid] = count(Outcome.invalid, 0) + 1
                continue
            outcome = engine.process(kind, result, offset)
            outcomes[outcome] = count(outcome, 0) + 1
            if outcome is Outcome.invalid:  # valid, but past a state bound (#12)
                self._dead_letter(kind, record, value, Reason.out_of_range.value, engine.refused)
                continue
            observe_lag(now_s - result.ts_s)
            if outcome is Outcome.late:
                detail = _late_detail(result, engine.watermark(kind))
                self._dead_letter(kind, record, value, "late", detail)
        if not self._not_committing.is_set():
            self.counted_while_committing += len(records)
        # Nothing awaited since the first record, so no scrape saw a partial batch.
        for outcome, n in outcomes.items():
            self._counted[kind, outcome].inc(n)
        return outcomes

    def _dead_letter(
        self, kind: Kind, record: SourceMessage, value: bytes, reason: str, detail: str
    ) -> None:
        key = record.key if isinstance(record.key, bytes) else None
        letter = DeadLetter(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp or None,
            key=key,
            value=value,
            reason=reason,
            detail=detail,
        )
        encoded = encode_dead_letter(
            letter, max_value_bytes=self.settings.max_event_bytes, now_s=time.time()
        )
        self._pending.append(
            OutRecord(
                self.settings.topics.dlq, dlq_key(letter), encoded, dead_letter_headers(letter)
            )
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
                revocations = self._revocations.get(partition, 0)
                entries = await self.store.read(partition)
                engine = PartitionEngine.restore(partition, self.config, entries)
                log.info(
                    "restored partition %d: %d entries in %.2fs",
                    partition,
                    len(entries),
                    time.monotonic() - started,
                )
                if self._revocations.get(partition, 0) == revocations:
                    self.engines[partition] = engine
                # else: revoked while reading, so the state read may be older than what
                # the next owner commits; the next record or restore_owned reads it again.
                future.set_result(engine)
            except BaseException as exc:
                future.set_exception(exc)
                raise
            finally:
                del self._restoring[partition]
            return engine
        return await future

    async def restore_owned(self) -> None:
        """Restore every owned partition that has no engine yet.

        Records restore their partition as they arrive, but a partition with nothing new
        to read would otherwise never be restored: its counts would not be exported and
        its timers would not fire until a record came.
        """
        for partition in sorted(self._owned() - self.engines.keys()):
            await self.engine(partition)

    async def on_revoked(self, partitions: set[int]) -> None:
        """Checkpoint, then forget the engines of ``partitions`` (another worker takes them)."""
        for partition in partitions:
            self._revocations[partition] = self._revocations.get(partition, 0) + 1
        await self.checkpoint()
        for partition in partitions:
            self._snapshot_keys.pop(partition, None)
            engine = self.engines.pop(partition, None)
            if engine is not None:
                for label, count in engine.label_overflows.items():
                    self.retired_overflows[label] = self.retired_overflows.get(label, 0) + count
                self.retired_dropped_writes += engine.dropped_writes
            for kind in Kind:
                self._progress.pop((partition, kind), None)
        for tp in [tp for tp in self._committed_offsets if tp.partition in partitions]:
            del self._committed_offsets[tp]

    # -- checkpoints -----------------------------------------------------------------------

    async def advance_idle(self) -> None:
        """Refresh the consumer lag, and let idle, caught-up watermarks follow the clock.

        Idle means: no record moved its offset for ``idle_after_s``, as seen by these calls
        (one per checkpoint), which costs the record path nothing.
        """
        now = time.monotonic()
        tps: dict[TopicPartition, tuple[PartitionEngine, Kind, bool]] = {}
        for partition, engine in list(self.engines.items()):
            for kind, topic in self.topic_of.items():
                offset = engine.next_offset(kind)
                seen = self._progress.get((partition, kind))
                idle = False
                if seen is None or seen[0] != offset:
                    self._progress[partition, kind] = (offset, now)
                elif now - seen[1] >= self.settings.idle_after_s:
                    idle = True
                tps[TopicPartition(topic, partition)] = (engine, kind, idle)
        if not tps:
            return
        ends = await self._end_offsets(list(tps))
        wall = time.time()
        lag: dict[tuple[Kind, int], int] = {}
        for tp, (engine, kind, idle) in tps.items():
            end = ends.get(tp)
            if end is None:
                continue
            lag[kind, tp.partition] = max(0, end - engine.next_offset(kind))
            # Only when nothing is left to read: otherwise this would make records late that
            # are merely waiting behind a slow consumer.
            if idle and engine.next_offset(kind) >= end:
                engine.advance_watermark(kind, wall - self.settings.allowed_lateness_s)
        self.lag = lag

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
        now = time.time()
        if now - self._last_snapshot_s >= self.settings.snapshot_interval_s:
            self._last_snapshot_s = now
            records.extend(self._snapshots(now))
        return Checkpoint(entries=entries, offsets=offsets, records=records)

    def _snapshots(self, now: float) -> list[OutRecord]:
        """Return KPI snapshot records (and tombstones) of every owned partition."""
        topic = self.settings.topics.snapshots
        out: list[OutRecord] = []
        owned = self._owned()
        for partition, engine in self.engines.items():
            if partition not in owned:
                continue
            records, live = snapshot_records(
                partition,
                engine.window_values(now),
                reference_s=now,
                previous=self._snapshot_keys.get(partition, set()),
            )
            self._snapshot_keys[partition] = live
            out.extend(OutRecord(topic, key, value) for key, value in records)
        return out

    async def checkpoint(self) -> None:
        """Commit changed state, dead letters and offsets in one transaction."""
        async with self._lock:
            # Taken without an await in between: entries and offsets describe one instant.
            checkpoint = self._take_checkpoint()
            if checkpoint.empty:
                return
            started = time.monotonic()
            self._not_committing.clear()
            self.counted_while_committing = 0
            try:
                await self.store.commit(checkpoint)
            except Exception:
                # The taken entries are no longer dirty in memory but not in Kafka either:
                # carrying on would persist a state with holes. Restart from Kafka instead.
                log.critical("checkpoint failed; exiting so the state is rebuilt", exc_info=True)
                os._exit(EXIT_STATE_LOST)
            finally:
                self._not_committing.set()
            self._committed_offsets.update(checkpoint.offsets)
            self.checkpoints += 1
            self.checkpoint_seconds += time.monotonic() - started

    @property
    def committing(self) -> bool:
        """Say whether a checkpoint transaction is being committed."""
        return not self._not_committing.is_set()

    async def wait_committed(self) -> None:
        """Return once no checkpoint transaction is being committed."""
        await self._not_committing.wait()

    def window_values(self, reference_s: float) -> Iterator[tuple[str, str, tuple[str, ...], Any]]:
        """Yield every owned engine's window values (not yet summed across partitions)."""
        owned = self._owned()
        for partition, engine in list(self.engines.items()):
            if partition in owned:
                yield from engine.window_values(reference_s)


def _late_detail(event: Event, watermark: float | None) -> str:
    return f"ts {event.ts_s:.3f} is behind the watermark {watermark or 0:.3f}"
