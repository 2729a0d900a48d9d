"""Pageviews agent: parse, dead-letter the invalid, count the accepted per channel."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import faust
from faust.types import StreamT

from streamkpi.events import Kind, Rejection, parse
from streamkpi.exporter.pipeline import Outcome
from streamkpi.exporter.tables import ChannelPageviewsCollector, partition_key

if TYPE_CHECKING:
    from streamkpi.app import Runtime

__all__ = ["attach"]


def attach(app: faust.App, runtime: Runtime) -> None:
    """Declare the pageviews topic, its per-channel table and agent on ``app``."""
    topic_name = runtime.settings.topics.pageviews
    topic = app.topic(topic_name, key_serializer="raw", value_serializer="raw")
    # Keyed by (source partition, channel): see exporter.tables.partition_key for why.
    channel_pageviews = app.Table(
        "channel_pageviews",
        default=int,
        key_type=str,
        value_type=int,
        partitions=runtime.settings.topic_partitions,
    )

    @app.agent(topic, name="streamkpi.pageviews")
    async def pageviews(stream: StreamT[Any]) -> None:
        async for event in stream.events():
            result = parse(Kind.pageviews, event.value, runtime.parse_ctx, time.time())
            if isinstance(result, Rejection):
                await runtime.reject(Kind.pageviews, event, result)
                continue
            channel_pageviews[partition_key(event.message.partition, result.channel)] += 1
            runtime.metrics.count(Kind.pageviews.value, Outcome.accepted)

    runtime.registry.register(
        ChannelPageviewsCollector(
            items=channel_pageviews.items,
            owned_partitions=lambda: runtime.owned_partitions(topic_name),
        )
    )
