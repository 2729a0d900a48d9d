"""KPI state in Kafka: a compacted topic written in transactions together with the offsets.

Why not Faust tables (see ../shared/notes/faust.md): a table writes its changelog on every
update (a produce per event per key), its offsets are committed independently of those
writes (at-least-once: a crash between the two counts events twice), and its
exactly-once mode has open bugs (faust #323, #177, #517). Here one Kafka transaction per
checkpoint holds everything a checkpoint means — the changed state entries, the dead
letters produced since the last one, and the consumer group's input offsets — so after a
``kill -9`` the group resumes exactly where the state it reads back (read_committed)
left off: nothing lost, nothing counted twice.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streamkpi.config import Settings
from streamkpi.topics import BATCH_BYTES, aiokafka_security, state_topic_name

__all__ = ["Checkpoint", "CheckpointRefused", "OutRecord", "StateStore", "transactional_id"]

log = logging.getLogger(__name__)

Entry = tuple[bytes, bytes | None]


class CheckpointRefused(RuntimeError):
    """The broker refused part of a checkpoint transaction; it was aborted (#12)."""


def transactional_id(settings: Settings) -> str:
    """Return this worker's transactional id: stable across restarts of the same worker.

    A restarted worker with the same id fences its killed predecessor and aborts its open
    transaction at once; a new id would leave that transaction blocking read_committed
    readers until the broker times it out.
    """
    worker = settings.worker_id or f"{socket.gethostname()}-{settings.web_port}"
    return f"{settings.app_id}-{worker}"


@dataclass(frozen=True, slots=True)
class OutRecord:
    """A record to produce inside the checkpoint's transaction (e.g. a dead letter)."""

    topic: str
    key: bytes | None
    value: bytes | None  # None: a tombstone (compacted topics)
    headers: Sequence[tuple[str, bytes]] = ()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Everything one transaction commits."""

    entries: Mapping[int, Sequence[Entry]]  # state partition -> changed entries, in order
    offsets: Mapping[TopicPartition, int]  # input topic-partition -> next offset to read
    records: Sequence[OutRecord]

    @property
    def empty(self) -> bool:
        """Say whether there is nothing to commit."""
        return not self.records and not self.offsets and not any(self.entries.values())


class StateStore:
    """Writes checkpoints transactionally and reads a partition's state back."""

    def __init__(self, settings: Settings) -> None:
        """Prepare (but do not connect) the transactional producer."""
        self._settings = settings
        self.topic = state_topic_name(settings)
        self._started = False
        self._start_lock = asyncio.Lock()
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Connect, register the transactional id and fence any zombie holding it (once).

        Done before the first restore: fencing aborts a killed predecessor's open
        transaction, which would otherwise hold back the read_committed restore.
        """
        async with self._start_lock:
            if not self._started:
                # aiokafka binds a client to the running loop, so it is made here, not in
                # __init__ (which runs before Faust has a loop).
                settings = self._settings
                self._producer = AIOKafkaProducer(
                    bootstrap_servers=settings.bootstrap_servers,
                    client_id=f"{settings.app_id}-state",
                    transactional_id=transactional_id(settings),
                    enable_idempotence=True,
                    acks="all",
                    # Bounds how long a crashed worker's open transaction can hold back a
                    # restore when its successor has another id (same id: aborted at once).
                    transaction_timeout_ms=int(settings.transaction_timeout_s * 1000),
                    max_request_size=8 * 1024 * 1024,
                    # Below the broker's default message.max.bytes (1 MiB + 12).
                    max_batch_size=BATCH_BYTES,
                    **aiokafka_security(settings),
                )
                await self._producer.start()
                self._started = True

    async def stop(self) -> None:
        """Flush and disconnect."""
        if self._started and self._producer is not None:
            await self._producer.stop()
            self._started = False

    async def commit(self, checkpoint: Checkpoint) -> None:
        """Commit ``checkpoint`` atomically; raise (after aborting) if that fails."""
        await self.start()
        producer = self._producer
        assert producer is not None
        await producer.begin_transaction()
        # Every delivery result is awaited before the commit (#12): aiokafka commits a
        # transaction although some of its batches were refused (MessageSizeTooLarge),
        # and the only trace was "Future exception was never retrieved" in the log.
        deliveries: list[asyncio.Future[object]] = []
        try:
            for partition, entries in checkpoint.entries.items():
                await self._send_entries(producer, partition, entries, deliveries)
            for record in checkpoint.records:
                deliveries.append(
                    await producer.send(
                        record.topic, record.value, key=record.key, headers=list(record.headers)
                    )
                )
            if checkpoint.offsets:
                await producer.send_offsets_to_transaction(
                    dict(checkpoint.offsets), self._settings.app_id
                )
            results = await asyncio.gather(*deliveries, return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                raise CheckpointRefused(
                    f"{len(failed)} of {len(results)} checkpoint records refused by the broker: "
                    f"{failed[0]!r}"
                ) from failed[0]
        except BaseException:
            for delivery in deliveries:  # retrieved: no "never retrieved" noise
                if delivery.done() and not delivery.cancelled():
                    delivery.exception()
            await producer.abort_transaction()
            raise
        await producer.commit_transaction()

    async def _send_entries(
        self,
        producer: AIOKafkaProducer,
        partition: int,
        entries: Sequence[Entry],
        deliveries: list[asyncio.Future[object]],
    ) -> None:
        # Whole batches, not one send() per entry (issue 3, worker memory): send() waits
        # for the broker each time a partition's batch is full, and while it waits the
        # consumer counts on, so a checkpoint of 50k entries in 16 KiB batches lasted
        # seconds and the next one grew with it. Building batches directly also skips a
        # future and a serializer call per entry.
        batch = producer.create_batch()
        for key, value in entries:
            if batch.append(key=key, value=value, timestamp=None) is None:
                batch.close()
                deliveries.append(await producer.send_batch(batch, self.topic, partition=partition))
                batch = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"state entry {key!r} is larger than a producer batch")
        if batch.record_count():
            batch.close()
            deliveries.append(await producer.send_batch(batch, self.topic, partition=partition))

    async def read(self, partition: int) -> list[Entry]:
        """Return the committed state of ``partition``: each live key with its last value.

        Keys in the order replaying the raw log into a dict leaves them (what
        ``PartitionEngine.restore`` does); deleted keys are left out.
        """
        await self.start()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.bootstrap_servers,
            client_id=f"{self._settings.app_id}-restore",
            enable_auto_commit=False,
            # Entries of aborted (crashed) checkpoints must never come back.
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            fetch_max_bytes=16 * 1024 * 1024,
            **aiokafka_security(self._settings),
        )
        await consumer.start()
        try:
            tp = TopicPartition(self.topic, partition)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            # For read_committed, end_offsets is the last stable offset: it waits for open
            # transactions, so an aborted one cannot hide entries that come after it.
            end = (await consumer.end_offsets([tp]))[tp]
            # Compacted as it is read (the last value of a key wins, a tombstone deletes
            # it): the log holds every version written since the last compaction, often
            # several per key, and keeping them all made a restore's peak memory.
            latest: dict[bytes, bytes] = {}
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=10_000)
                for message in batch.get(tp, []):
                    key = message.key
                    if key is None:
                        continue
                    if message.value is None:
                        latest.pop(key, None)
                    else:
                        latest[key] = message.value
            return list(latest.items())
        finally:
            await consumer.stop()
