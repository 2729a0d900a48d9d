"""Produce the live stream to Kafka, paced by the wall clock, until stopped or done."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from streamkpi.config import Settings
from streamkpi.events import Kind
from streamkpi.generator.live import LiveConfig, LiveGenerator
from streamkpi.generator.progress import Progress, pace_sleep_s
from streamkpi.generator.stream import Record

__all__ = ["BACKFILL_STEP_S", "TICK_S", "produce_live"]

TICK_S = 0.1  # events due within a tick go out together: event time is now to within 100 ms
# The backfill goes out in slices of this much event time, in event-time order, each
# slice sent in bulk (not paced), so memory holds one slice, not the whole backfill.
BACKFILL_STEP_S = 60.0


async def produce_live(
    settings: Settings,
    config: LiveConfig,
    *,
    duration_s: float | None,
    stop: asyncio.Event,
    report: Callable[[str], None],
    report_every_s: float = 10.0,
    clock: Callable[[], float] = time.time,
) -> Progress:
    """Send the live stream of ``config`` to the topics of ``settings``; return the totals.

    Runs until ``stop`` is set or ``duration_s`` has passed; reports a status line every
    ``report_every_s``. Records go to the partition the generator chose (the hash of their
    key), as the worker's co-partitioning expects.
    """
    from aiokafka import AIOKafkaProducer

    from streamkpi.topics import aiokafka_security

    topics = {kind: getattr(settings.topics, kind.value) for kind in Kind}
    start_s = clock()
    generator = LiveGenerator(config, start_s, duration_s)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        linger_ms=20,
        max_batch_size=256 * 1024,
        **aiokafka_security(settings),
    )
    await producer.start()
    try:
        if config.backfill_s > 0:
            await _backfill(generator, producer, topics, stop, report, report_every_s, clock)
    except BaseException:
        await producer.stop()
        raise
    # The live part's totals (the backfill reported its own): from the start, whose events
    # the first live advance releases together with those due while the backfill went out.
    progress = Progress(start_s)
    next_report_s = clock() + report_every_s
    behind_s = 0.0

    def status(now_s: float) -> str:
        return progress.line(
            now_s,
            target_rate=generator.target_rate(now_s),
            behind_s=behind_s,
            suppressed=generator.suppressed,
            incidents=config.incidents,
        )

    try:
        while not stop.is_set():
            tick_s = clock()
            records = generator.advance(tick_s)
            await _send_all(producer, topics, records)
            progress.add(r.kind for r in records)
            now_s = clock()
            behind_s = now_s - tick_s
            if now_s >= next_report_s:
                report(status(now_s))
                next_report_s += report_every_s * (1 + (now_s - next_report_s) // report_every_s)
            if duration_s is not None and tick_s >= start_s + duration_s:
                break
            # Wake up on stop as well as on the next tick.
            delay = pace_sleep_s(TICK_S, tick_s, now_s)
            if delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
    finally:
        await producer.stop()  # flushes what was sent
    report("done: " + status(clock()))
    return progress


async def _send_all(producer: Any, topics: dict[Kind, str], records: list[Record]) -> None:
    deliveries: list[asyncio.Future[Any]] = []
    for record in records:
        deliveries.append(
            await producer.send(
                topics[record.kind], record.value, key=record.key, partition=record.partition
            )
        )
    if deliveries:
        await asyncio.gather(*deliveries)  # backpressure: never run ahead of the broker


async def _backfill(
    generator: LiveGenerator,
    producer: Any,
    topics: dict[Kind, str],
    stop: asyncio.Event,
    report: Callable[[str], None],
    report_every_s: float,
    clock: Callable[[], float],
) -> None:
    """Produce the events before the start at once, in event-time order, with progress."""
    start_s = generator.origin_s
    first_s = generator.first_ms / 1000
    total_s = start_s - first_s
    began_s = clock()
    next_report_s = began_s + report_every_s
    sent = 0
    report(f"backfill: producing {total_s / 60:.0f} min of traffic before now, in bulk")
    upto_s = first_s
    while upto_s < start_s and not stop.is_set():
        upto_s = min(start_s, upto_s + BACKFILL_STEP_S)
        records = generator.advance(upto_s)
        await _send_all(producer, topics, records)
        sent += len(records)
        now_s = clock()
        if now_s >= next_report_s and upto_s < start_s:
            done = (upto_s - first_s) / total_s
            report(
                f"backfill: {100 * done:.0f}% ({(upto_s - first_s) / 60:.0f} of "
                f"{total_s / 60:.0f} min), {sent:,} events, {sent / (now_s - began_s):,.0f}/s"
            )
            next_report_s = now_s + report_every_s
    took_s = clock() - began_s
    report(f"backfill done: {sent:,} events in {took_s:.1f}s; now live")
