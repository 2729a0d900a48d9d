"""The local Kafka broker is a real one: metadata, produce/consume, topics, stop, crash, restart."""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaClient, AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streamkpi.localkafka import LocalKafka, LocalKafkaError, create_topics

Record = tuple[bytes, bytes]


def _topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _assert_process_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def _produce(bootstrap: str, topic: str, records: list[Record]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key, partition=0)
    finally:
        await producer.stop()


async def _read_partition_0(bootstrap: str, topic: str, count: int) -> list[Record]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        records: list[Record] = []
        deadline = time.monotonic() + 20
        while len(records) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(partition, timeout_ms=1000)
            records += [(m.key, m.value) for m in batch.get(partition, [])]
        return records
    finally:
        await consumer.stop()


async def _partition_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        metadata = await client.fetch_all_metadata()
        return {t: len(metadata.partitions_for_topic(t) or ()) for t in topics}
    finally:
        await client.close()


async def test_broker_answers_metadata_listing_itself_on_loopback(
    kafka_broker: LocalKafka,
) -> None:
    client = AIOKafkaClient(bootstrap_servers=kafka_broker.bootstrap_servers)
    await client.bootstrap()
    try:
        brokers = {(b.nodeId, b.host, b.port) for b in client.cluster.brokers()}
    finally:
        await client.close()
    assert brokers == {(1, "127.0.0.1", kafka_broker.port)}
    assert kafka_broker.bootstrap_servers == f"127.0.0.1:{kafka_broker.port}"


async def test_consumer_group_reads_back_exactly_what_was_produced(
    kafka_broker: LocalKafka,
) -> None:
    topic = _topic("roundtrip")
    records = [(b"k1", b"first"), (b"k2", b"second"), (b"k1", b"third")]
    await create_topics(kafka_broker.bootstrap_servers, [topic])
    await _produce(kafka_broker.bootstrap_servers, topic, records)

    # A subscribed group member, as a Faust worker is: exercises the group coordinator
    # and the __consumer_offsets topic, not only fetches.
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_broker.bootstrap_servers,
        group_id=_topic("group"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        got = [await consumer.getone() for _ in records]
        await consumer.commit()
        committed = await consumer.committed(TopicPartition(topic, 0))
    finally:
        await consumer.stop()

    assert [(m.key, m.value) for m in got] == records
    assert [m.offset for m in got] == [0, 1, 2]
    assert committed == 3


async def test_transactional_producer_commits_for_read_committed_consumers(
    kafka_broker: LocalKafka,
) -> None:
    # Faust's exactly-once mode needs transactions (and so the transaction state topic).
    topic = _topic("txn")
    await create_topics(kafka_broker.bootstrap_servers, [topic])
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_broker.bootstrap_servers, transactional_id=_topic("txn-id")
    )
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(topic, b"committed", partition=0)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_broker.bootstrap_servers,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        message = await consumer.getone()
    finally:
        await consumer.stop()
    assert (message.value, message.offset) == (b"committed", 0)


async def test_create_topics_sets_partition_counts_and_is_idempotent(
    kafka_broker: LocalKafka,
) -> None:
    three, one, listed = _topic("three"), _topic("one"), _topic("listed")
    bootstrap = kafka_broker.bootstrap_servers

    assert await create_topics(bootstrap, {three: 3, one: 1}) == sorted([three, one])
    assert await create_topics(bootstrap, [listed], partitions=2) == [listed]
    counts = await _partition_counts(bootstrap, [three, one, listed])
    assert counts == {three: 3, one: 1, listed: 2}

    # Asking again (even with other counts) creates nothing and changes nothing.
    assert await create_topics(bootstrap, {three: 3, one: 5, listed: 2}) == []
    assert await _partition_counts(bootstrap, [three, one, listed]) == counts


async def test_stop_ends_the_jvm_and_restart_on_the_same_data_dir_keeps_messages(
    kafka_libs: Path, tmp_path: Path
) -> None:
    broker = LocalKafka(data_dir=tmp_path / "kafka", libs_dir=kafka_libs)
    records = [(b"a", b"kept-1"), (b"b", b"kept-2")]
    try:
        broker.start()
        topic = _topic("persist")
        await _produce(broker.bootstrap_servers, topic, records)
        pid = broker.pid
        assert pid is not None

        broker.stop()
        broker.stop()  # idempotent

        _assert_process_gone(pid)
        assert not broker.running
        assert broker.pid is None
        assert (tmp_path / "kafka" / "kafka-logs" / "meta.properties").is_file()

        broker.start()
        assert broker.pid != pid
        assert await _read_partition_0(broker.bootstrap_servers, topic, 2) == records
    finally:
        broker.stop()


async def test_kill_then_start_on_the_same_data_dir_recovers_messages(
    kafka_libs: Path, tmp_path: Path
) -> None:
    broker = LocalKafka(data_dir=tmp_path / "kafka", libs_dir=kafka_libs)
    records = [(b"x", b"before-crash")]
    try:
        broker.start()
        topic = _topic("crash")
        await _produce(broker.bootstrap_servers, topic, records)
        pid = broker.pid
        assert pid is not None

        broker.kill()

        _assert_process_gone(pid)
        broker.start()
        assert await _read_partition_0(broker.bootstrap_servers, topic, 1) == records
    finally:
        broker.stop()


def test_context_manager_removes_its_temp_data_dir_and_jvm(kafka_libs: Path) -> None:
    with LocalKafka(libs_dir=kafka_libs) as broker:
        data_dir, pid = broker.data_dir, broker.pid
        assert (data_dir / "broker.log").is_file()
        assert pid is not None

    assert not data_dir.exists()
    _assert_process_gone(pid)


def test_start_fails_fast_with_the_broker_log_when_the_port_is_taken(kafka_libs: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        broker = LocalKafka(port=taken.getsockname()[1], libs_dir=kafka_libs)
        started = time.monotonic()
        try:
            with pytest.raises(LocalKafkaError, match="exited with code") as failure:
                broker.start(timeout_s=60)
        finally:
            broker.stop()

    assert time.monotonic() - started < 30  # the JVM's exit was noticed, not the timeout
    assert "Address already in use" in str(failure.value)


_START_AND_HANG = """
import sys, time
from pathlib import Path
from streamkpi.localkafka import LocalKafka
broker = LocalKafka(data_dir=Path(sys.argv[1]), libs_dir=Path(sys.argv[2]))
broker.start()
print(broker.pid, flush=True)
time.sleep(600)
"""


def test_jvm_dies_with_the_python_process_that_started_it(kafka_libs: Path, tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _START_AND_HANG, str(tmp_path / "kafka"), str(kafka_libs)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        jvm_pid = int(parent.stdout.readline())
        os.kill(jvm_pid, 0)  # running
    finally:
        parent.send_signal(signal.SIGKILL)  # no finalizer, no atexit: only PR_SET_PDEATHSIG
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(jvm_pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(jvm_pid, signal.SIGKILL)
    pytest.fail(f"JVM {jvm_pid} outlived the SIGKILLed Python process that started it")
