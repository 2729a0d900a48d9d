"""Faults with real processes: the broker is SIGKILLed mid-stream and restarted on its data.

The worker keeps counting while a producer keeps sending; the broker dies under both and
comes back on the same data dir and ports. The export must then equal the ground truth of
everything produced (no loss, no double count) and the committed offsets must reach the end
of every input partition. The repeated worker SIGKILLs are in test_engine_exact.py.

What a worker does when the broker dies (#12): a checkpoint that cannot commit makes it exit
with code 70 (EXIT_STATE_LOST) so its state is rebuilt from Kafka, one whose end-offset
requests go unanswered for 20 s exits with 69 (EXIT_BROKER_LOST), and while the broker is
unreachable a starting worker exits 1 ("cannot reach Kafka"); a supervisor (systemd,
Kubernetes, compose ``restart:``) restarts it. This test is that supervisor. A worker that
neither counts to the end nor exits fails the test by timing out.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from _workers import Samples, WorkerProcess, scrape, wait_for
from aiokafka import AIOKafkaProducer, TopicPartition
from test_engine_exact import PARTITIONS, Stream, progress, truth_params, wait_until_exact

from streamkpi.app import EXIT_BROKER_LOST
from streamkpi.events import Kind
from streamkpi.generator.stream import GenConfig, Record, generate
from streamkpi.generator.truth import ground_truth
from streamkpi.localkafka import LocalKafka, create_topics
from streamkpi.pipeline import EXIT_STATE_LOST

# A quarter of the exactness stream (~25k records): every kind of fault still in it.
SMALL = {"visitors": 3_000, "recipients": 1_600, "customers": 750, "respondents": 500}


class SupervisedWorker(WorkerProcess):
    """A worker restarted whenever it exits, as a process supervisor would."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        super().__init__(env, log_path)
        self.exits: list[int] = []

    def supervise(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            self.exits.append(self.proc.returncode)
            self.start()

    def metrics(self) -> Samples | None:
        self.supervise()
        return scrape(self.web_port)


@pytest.fixture
def broker(kafka_libs: Path, tmp_path: Path) -> Iterator[LocalKafka]:
    """A broker of this test alone: it is killed, and its data dir kept for the restart."""
    kafka = LocalKafka(libs_dir=kafka_libs, data_dir=tmp_path / "kafka")
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.stop()


class Sender:
    """Produces records in chunks with an idempotent producer, as a careful client does."""

    def __init__(self, bootstrap: str, topics: dict[Kind, str], records: list[Record]) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.records = records
        self.sent = 0  # records whose delivery was acknowledged

    async def run(self, gate: int, go: asyncio.Event) -> None:
        """Send ``gate`` records at once, wait for ``go``, then the rest at a live pace."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            enable_idempotence=True,  # retries across the outage are not written twice
            acks="all",
            linger_ms=5,
            request_timeout_ms=60_000,  # a batch waits out the broker's restart
        )
        await producer.start()
        try:
            await self._send(producer, self.records[:gate], chunk=2_000)
            await go.wait()
            await self._send(producer, self.records[gate:], chunk=200, pause_s=0.05)
        finally:
            await producer.stop()

    async def _send(
        self, producer: AIOKafkaProducer, records: list[Record], chunk: int, pause_s: float = 0
    ) -> None:
        for start in range(0, len(records), chunk):
            part = records[start : start + chunk]
            futures = [
                await producer.send(self.topics[r.kind], r.value, key=r.key, partition=r.partition)
                for r in part
            ]
            await asyncio.gather(*futures)
            self.sent += len(part)
            await asyncio.sleep(pause_s)  # a live source, not a bulk load


@pytest.mark.timeout(480)
async def test_broker_sigkill_mid_stream_then_restart_loses_and_doubles_nothing(
    broker: LocalKafka, tmp_path: Path
) -> None:
    now = time.time()
    config = GenConfig(seed=23, start_s=now - 8 * 3600, partitions=PARTITIONS, **SMALL)
    assert config.start_s + config.duration_s <= now - 3600 - 300
    records = generate(config)
    run = uuid.uuid4().hex[:6]
    topics = {kind: f"{kind.value}-{run}" for kind in Kind}
    counts = Counter((topics[r.kind], r.partition) for r in records)
    stream = Stream(
        run,
        topics,
        records,
        ground_truth(records, truth_params(now)),
        {
            TopicPartition(t, p): counts.get((t, p), 0)
            for t in topics.values()
            for p in range(PARTITIONS)
        },
    )
    await create_topics(broker.bootstrap_servers, list(topics.values()), partitions=PARTITIONS)
    app_id = f"brokerkill-{run}"
    env = stream.env(broker, app_id, tmp_path)
    # The stream is dated hours ago: a partition idle for idle_after_s would have its
    # watermark follow the clock and turn the rest of its (old) records late. Sparse ones
    # (adspend) sit idle for seconds while the producer pauses and the broker is away.
    env["STREAMKPI_IDLE_AFTER_S"] = "30"
    worker = SupervisedWorker(env, tmp_path / "w.log")
    sender = Sender(broker.bootstrap_servers, topics, records)
    gate, go = len(records) * 2 // 5, asyncio.Event()
    worker.start()
    sending = asyncio.create_task(sender.run(gate, go))
    try:

        async def counting() -> bool:
            worker.supervise()
            return sender.sent >= gate and await progress(broker, app_id, stream) > 0

        await wait_for_or_fail(counting, sending, worker, "the worker to commit mid-stream")
        go.set()

        async def sending_again() -> bool:
            return sender.sent > gate

        await wait_for_or_fail(sending_again, sending, worker, "the producer to send on")
        assert not sending.done(), "the producer finished before the kill"
        assert await progress(broker, app_id, stream) < 1.0
        killed_at = time.monotonic()
        broker.kill()
        await asyncio.to_thread(broker.start)
        outage_s = time.monotonic() - killed_at
        await asyncio.wait_for(sending, timeout=240)
        assert sender.sent == len(records)
        await wait_until_exact(stream, [worker], broker, app_id)
    finally:
        sending.cancel()
        worker.supervise()
        code = worker.stop()
    assert code == 0, worker.log_tail()
    # Reported in the CI log: how long the broker was away and what the worker did.
    print(f"broker outage {outage_s:.1f}s; worker exits during it: {worker.exits}")
    assert set(worker.exits) <= {1, EXIT_BROKER_LOST, EXIT_STATE_LOST}, worker.log_tail()


async def wait_for_or_fail(
    condition: Callable[[], Awaitable[bool]],
    task: asyncio.Task[None],
    worker: WorkerProcess,
    what: str,
) -> None:
    """Wait for ``condition`` while ``task`` runs; a failed task is reported at once."""

    async def check() -> bool:
        if task.done():
            task.result()  # raises the producer's error
        return await condition()

    await wait_for(check, timeout_s=180, what=what, on_timeout=worker.log_tail)
