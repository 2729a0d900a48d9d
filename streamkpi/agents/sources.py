"""One thin agent per input topic: hand each record to the pipeline, never ack it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import faust
from faust.types import StreamT

from streamkpi.events import Kind
from streamkpi.pipeline import SourceRecord

if TYPE_CHECKING:
    from streamkpi.app import Runtime

__all__ = ["KINDS", "attach"]

KINDS: tuple[Kind, ...] = tuple(Kind)


def attach(app: faust.App, runtime: Runtime) -> None:
    """Declare the five input topics and an agent for each on ``app``."""
    for kind in KINDS:
        _attach_one(app, runtime, kind)


def _attach_one(app: faust.App, runtime: Runtime, kind: Kind) -> None:
    topic = app.topic(runtime.pipeline.topic_of[kind], key_serializer="raw", value_serializer="raw")
    pipeline = runtime.pipeline

    @app.agent(topic, name=f"streamkpi.{kind.value}")
    async def consume(stream: StreamT[Any]) -> None:
        # noack: offsets are committed by the checkpoint transaction with the state they
        # produced (streamkpi/statestore.py), not by Faust's at-least-once acks.
        async for event in stream.noack().events():  # type: ignore[attr-defined]  # on Stream
            message = event.message
            await pipeline.handle(
                kind,
                SourceRecord(
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    timestamp_ms=round(message.timestamp * 1000) if message.timestamp else None,
                    key=message.key if isinstance(message.key, bytes) else None,
                    value=event.value if isinstance(event.value, bytes) else b"",
                ),
            )
