"""End-to-end worker benchmark: events/s and RSS of one worker process on a local broker.

    python benchmarks/worker_bench.py                 # the generator's mixed stream
    python benchmarks/worker_bench.py --memory        # 24 h of buckets for 1,000 label keys
    python benchmarks/worker_bench.py --memory --visitors 100000 --restart

Starts its own Kafka broker (streamkpi.localkafka) on free ports, produces the input,
then times one `streamkpi worker` subprocess from spawn until its committed offsets reach
the end of every input partition, and reads the worker's RSS from /proc. Prints figures;
asserts nothing. ``--restart`` then starts a second worker on the committed state and
reports its RSS once it has restored every partition and served a scrape: the memory of
a worker *holding* the state, without the catch-up's transient allocations.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streamkpi.events import Kind
from streamkpi.generator.stream import CURRENCY_RATES, GenConfig, Record, generate
from streamkpi.localkafka import LocalKafka, create_topics, free_port

PARTITIONS = 4


def mixed_records(scale: float) -> list[Record]:
    """Return the generator's mixed stream, ending two hours ago."""
    base = GenConfig.for_test(seed=3, start_s=time.time() - 8 * 3600, partitions=PARTITIONS)
    config = GenConfig(
        **{
            **base.__dict__,
            "visitors": int(base.visitors * scale),
            "recipients": int(base.recipients * scale),
            "customers": int(base.customers * scale),
            "respondents": int(base.respondents * scale),
        }
    )
    return generate(config)


def memory_records(keys: int, hours: int, visitors: int = 0) -> list[Record]:
    """Return pageviews touching ``keys`` campaign x channel keys every minute for ``hours``.

    Every pageview is a new visitor unless ``visitors`` > 0 (then visitor ``n % visitors``):
    the engine remembers each visitor for ``visitor_memory_s`` (30 days) to tell new from
    returning, so distinct visitors cost memory of their own, apart from the buckets.
    """
    channels = ["organic", "paid", "referral", "direct", "email", "social", "other"]
    labels = [(f"c{i // len(channels):04d}", channels[i % len(channels)]) for i in range(keys)]
    start = time.time() - hours * 3600
    out = []
    n = 0
    for minute in range(hours * 60):
        ts = start + minute * 60
        for campaign, channel in labels:
            n += 1
            vid = n % visitors if visitors else n
            visitor = f"v{vid}"
            value = orjson.dumps(
                {
                    "event_id": f"e{n}",
                    "ts": ts,
                    "visitor_id": visitor,
                    "campaign": campaign,
                    "channel": channel,
                    "page": "/",
                }
            )
            key = visitor.encode()
            out.append(Record(Kind.pageviews, vid % PARTITIONS, key, value))
    return out


async def produce(bootstrap: str, topics: dict[Kind, str], records: list[Record]) -> None:
    await create_topics(bootstrap, list(topics.values()), partitions=PARTITIONS)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        pending = []
        for i, r in enumerate(records):
            pending.append(
                await producer.send(topics[r.kind], r.value, key=r.key, partition=r.partition)
            )
            if len(pending) >= 50_000:
                await asyncio.gather(*pending)
                pending.clear()
                print(f"  produced {i + 1:,}/{len(records):,}", file=sys.stderr)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def committed(bootstrap: str, group: str, tps: list[TopicPartition]) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        return sum([(await consumer.committed(tp)) or 0 for tp in tps])
    finally:
        await consumer.stop()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def restored_worker_rss(env: dict[str, str], workdir: Path) -> tuple[float, float]:
    """Start a worker on the committed state; return its RSS once restored, and the time."""
    port = free_port()
    env = {**env, "STREAMKPI_WEB_PORT": str(port), "STREAMKPI_LOG_LEVEL": "info"}
    log = (workdir / "worker2.log").open("wb")
    started = time.monotonic()
    worker = subprocess.Popen(
        [sys.executable, "-m", "streamkpi", "worker"], env=env, stdout=log, stderr=log
    )
    try:
        while True:
            if worker.poll() is not None:
                raise SystemExit(f"worker exited: {(workdir / 'worker2.log').read_text()[-3000:]}")
            time.sleep(0.5)
            # The pipeline logs each partition it restores (at info level).
            if (workdir / "worker2.log").read_text().count("restored partition") < PARTITIONS:
                continue
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as r:
                text = r.read().decode()  # the first scrape builds the window sums
            if "streamkpi_pageviews{" not in text:
                raise SystemExit("the restored worker exports no pageviews")
            return rss_mib(worker.pid), time.monotonic() - started
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="mixed stream size factor")
    parser.add_argument("--memory", action="store_true", help="the 24 h x 1,000 keys RSS run")
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument(
        "--visitors", type=int, default=0, help="distinct visitors (default: one per pageview)"
    )
    parser.add_argument(
        "--restart", action="store_true", help="then measure a worker restored from the state"
    )
    parser.add_argument(
        "--trace", type=float, default=0, metavar="S", help="print progress and RSS every S s"
    )
    args = parser.parse_args()

    records = (
        memory_records(args.keys, args.hours, args.visitors)
        if args.memory
        else mixed_records(args.scale)
    )
    kinds = Counter(r.kind.value for r in records)
    print(f"records: {len(records):,} {dict(kinds)}")
    workdir = Path(tempfile.mkdtemp(prefix="streamkpi-bench-"))
    broker = LocalKafka(data_dir=workdir / "kafka", heap="1g")
    broker.start()
    try:
        run = uuid.uuid4().hex[:6]
        topics = {kind: f"{kind.value}-{run}" for kind in Kind}
        t0 = time.monotonic()
        asyncio.run(produce(broker.bootstrap_servers, topics, records))
        print(f"produced in {time.monotonic() - t0:.1f}s")
        counts = Counter((topics[r.kind], r.partition) for r in records)
        tps = [TopicPartition(t, p) for t in topics.values() for p in range(PARTITIONS)]
        total = sum(counts.values())
        app_id = f"bench-{run}"
        env = {
            **os.environ,
            "STREAMKPI_APP_ID": app_id,
            "STREAMKPI_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "STREAMKPI_WEB_PORT": str(free_port()),
            "STREAMKPI_TOPIC_PARTITIONS": str(PARTITIONS),
            "STREAMKPI_DATA_DIR": str(workdir / "worker"),
            "STREAMKPI_LOG_LEVEL": "warning",
            "STREAMKPI_CURRENCY_RATES": orjson.dumps(
                {k: str(v) for k, v in CURRENCY_RATES.items()}
            ).decode(),
            "STREAMKPI_LABELS__MAX_CAMPAIGNS": str(max(args.keys, 50)),
            **{f"STREAMKPI_TOPICS__{k.value.upper()}": t for k, t in topics.items()},
        }
        log = (workdir / "worker.log").open("wb")
        started = time.monotonic()
        worker = subprocess.Popen(
            [sys.executable, "-m", "streamkpi", "worker"], env=env, stdout=log, stderr=log
        )
        marks: dict[float, float] = {}
        peak_rss = 0.0
        traced = started
        try:
            done = 0
            while done < total:
                if worker.poll() is not None:
                    raise SystemExit(
                        f"worker exited: {(workdir / 'worker.log').read_text()[-3000:]}"
                    )
                time.sleep(0.5)
                done = asyncio.run(committed(broker.bootstrap_servers, app_id, tps))
                rss_now = rss_mib(worker.pid)
                peak_rss = max(peak_rss, rss_now)
                if args.trace and time.monotonic() - traced >= args.trace:
                    traced = time.monotonic()
                    print(
                        f"  {traced - started:5.1f}s {done:>10,} committed, RSS {rss_now:5.0f} MiB",
                        flush=True,
                    )
                for fraction in (0.1, 0.9):
                    if fraction not in marks and done >= fraction * total:
                        marks[fraction] = time.monotonic()
            elapsed = time.monotonic() - started
            rss = rss_mib(worker.pid)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
            log.close()
        steady = 0.8 * total / (marks[0.9] - marks[0.1]) if len(marks) == 2 else float("nan")
        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
            f"Python {platform.python_version()}"
        )
        print(
            f"end to end (spawn -> all offsets committed): {elapsed:.1f}s "
            f"= {total / elapsed:,.0f} events/s"
        )
        print(f"steady state (10% -> 90% committed): {steady:,.0f} events/s")
        print(f"worker RSS at the end: {rss:.0f} MiB (peak seen {peak_rss:.0f} MiB)")
        if args.restart:
            restored_rss, seconds = restored_worker_rss(env, workdir)
            print(
                f"restarted worker, state restored and scraped after {seconds:.1f}s: "
                f"RSS {restored_rss:.0f} MiB"
            )
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
