"""A checkpoint never commits a partial write (#12), on a real broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from streamkpi.config import load_settings
from streamkpi.localkafka import LocalKafka
from streamkpi.statestore import Checkpoint, CheckpointRefused, OutRecord, StateStore
from streamkpi.topics import ensure_topics


def test_a_refused_dead_letter_aborts_the_whole_checkpoint(kafka_broker: LocalKafka) -> None:
    # Before #12 the broker refused the 1.1 MB-keyed record (MessageSizeTooLarge: its
    # max.message.bytes is 1 MiB) and aiokafka committed the rest of the transaction.
    settings = load_settings(
        bootstrap_servers=kafka_broker.bootstrap_servers,
        app_id=f"partial-{uuid.uuid4().hex[:8]}",
        topic_partitions=1,
    )

    async def run() -> list[tuple[bytes, bytes | None]]:
        await ensure_topics(settings)
        store = StateStore(settings)
        try:
            checkpoint = Checkpoint(
                entries={0: [(b"c|x", b"1")]},
                offsets={},
                records=[OutRecord(settings.topics.dlq, b"k" * 1_100_000, b"x")],
            )
            with pytest.raises(CheckpointRefused):
                await store.commit(checkpoint)
            # The store still works after an aborted checkpoint.
            await store.commit(Checkpoint(entries={0: [(b"c|y", b"2")]}, offsets={}, records=[]))
            return list(await store.read(0))
        finally:
            await store.stop()

    assert asyncio.run(run()) == [(b"c|y", b"2")]
