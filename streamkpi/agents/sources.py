"""The input topics, and the consumer that hands their records to the pipeline in batches.

Faust delivers a record to an agent through about ten event-loop callbacks: its fetch loop
waits on each record with ``wait_first`` (four tasks made and three cancelled per record),
then the conductor decodes it into an ``Event``, queues it on the topic's channel, and the
stream iterator and the agent pick it up. That costs more than parsing and counting it
(~55 µs per record on this project's machine; a do-nothing agent tops out at ~18,000
records/s). streamkpi uses none of what that machinery is for: no Faust streams, tables
or acks (offsets are committed by the checkpoint transaction with the state they produced,
streamkpi/statestore.py). So :class:`BatchConsumer` keeps Faust's consumer — group
membership, the co-partitioned assignment, rebalance callbacks, seeks, the fetch thread —
and replaces only its fetch loop: every batch aiokafka returns goes straight to
:meth:`Pipeline.process <streamkpi.pipeline.Pipeline.process>`, synchronously, in chunks
of ``CHUNK`` records of one topic-partition.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import faust
from faust.transport.drivers import aiokafka as aiokafka_driver

from streamkpi.events import Kind

if TYPE_CHECKING:
    from streamkpi.app import Runtime
    from streamkpi.pipeline import Pipeline

__all__ = ["KINDS", "BatchConsumer", "SourceApp", "attach"]

KINDS: tuple[Kind, ...] = tuple(Kind)
# Records handed to the pipeline between two yields to the event loop (~30 ms of work).
CHUNK = 1000
# Records counted while a checkpoint commits before waiting for it (~1 s of work): its
# broker round trips overlap with counting, but cannot be stretched without bound.
OVERLAP = 30_000


class SourceApp(faust.App):
    """A Faust app whose consumer is a :class:`BatchConsumer` once ``attach`` has run."""

    source_pipeline: Pipeline | None = None

    def _new_consumer(self) -> Any:
        # Faust's App._new_consumer with our class (made lazily, on the worker's loop).
        if self.source_pipeline is None:
            return super()._new_consumer()
        transport = self.transport
        return BatchConsumer(
            transport,
            pipeline=self.source_pipeline,
            callback=self.topics.on_message,
            on_partitions_revoked=self._on_partitions_revoked,
            on_partitions_assigned=self._on_partitions_assigned,
            beacon=self.beacon,
            loop=transport.loop,
        )


def attach(app: SourceApp, runtime: Runtime) -> None:
    """Subscribe ``app`` to the five input topics and feed them to the pipeline."""
    pipeline = runtime.pipeline
    for kind in KINDS:
        # acks=False: Faust neither tracks nor commits these offsets (the checkpoint
        # transaction does), and its "stream is not committing" checks stay quiet.
        topic = app.topic(
            pipeline.topic_of[kind], key_serializer="raw", value_serializer="raw", acks=False
        )
        app.topics.add(topic)  # what iterating it in an agent would do: subscribe it
    app.source_pipeline = pipeline


class BatchConsumer(aiokafka_driver.Consumer):
    """Faust's aiokafka consumer, with a fetch loop that hands whole batches to the pipeline."""

    def __init__(self, *args: Any, pipeline: Pipeline, **kwargs: Any) -> None:
        """Build Faust's consumer; records go to ``pipeline``, not to the conductor."""
        super().__init__(*args, **kwargs)
        self.pipeline = pipeline

    @staticmethod
    async def _pause(pipeline: Pipeline) -> None:
        """Between two chunks: let timers, rebalance callbacks and /metrics run.

        While a checkpoint commits, only ``OVERLAP`` more records are counted before
        waiting for it: its sends wait on the broker, and each wait would otherwise last a
        whole chunk, stretching its transaction (up to a fencing timeout when the CPU is
        short) and the number of entries the next one holds.
        """
        if pipeline.committing and pipeline.counted_while_committing >= OVERLAP:
            await pipeline.wait_committed()
        else:
            await asyncio.sleep(0)

    async def _drain_messages(self, fetcher: Any) -> None:
        # Replaces faust.transport.consumer.Consumer._drain_messages (run by the Fetcher
        # service) and the per-record part of Consumer.getmany, keeping their rules: wait
        # while the flow is stopped (a rebalance); a batch fetched while it was stopped is
        # dropped and the partitions are sought back to their committed offsets; stop
        # delivering a batch when the consumer generation changed under it.
        pipeline = self.pipeline
        engines = pipeline.engines
        kind_of = {topic: kind for kind, topic in pipeline.topic_of.items()}
        app = self.app
        read_offset = self._read_offset
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                records, active = await self._wait_next_records(1.0)
                if not records or self.should_stop:
                    await asyncio.sleep(0)
                    continue
                if not self.flow_active:
                    await self.perform_seek()
                    continue
                generation = app.consumer_generation_id
                for tp, batch in records.items():
                    kind = kind_of.get(tp.topic)
                    if kind is None or not batch:
                        continue
                    if active is not None and tp not in active:
                        continue
                    partition = tp.partition
                    if partition not in engines and partition in pipeline.owned():
                        # First records of a partition: restore its state (awaits).
                        await pipeline.engine(partition)
                        if app.consumer_generation_id != generation or not self.flow_active:
                            break  # rebalanced meanwhile: the seek that follows re-reads
                    for start in range(0, len(batch), CHUNK):
                        if start or pipeline.committing:
                            await self._pause(pipeline)
                            if app.consumer_generation_id != generation or not self.flow_active:
                                break  # rebalanced meanwhile: the seek that follows re-reads
                        chunk = batch[start : start + CHUNK]
                        pipeline.process(kind, partition, chunk)
                        read_offset[tp] = chunk[-1].offset
                    else:
                        continue
                    break
                await asyncio.sleep(0)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
