"""Kafka admin chores: client credentials from Settings, and creating/checking the topics."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streamkpi.config import Settings

__all__ = [
    "BATCH_BYTES",
    "REQUIRED_MESSAGE_BYTES",
    "TopicsError",
    "aiokafka_security",
    "ensure_topics",
    "source_topics",
    "ssl_context",
]

_TOPIC_ALREADY_EXISTS = 36  # Kafka protocol error codes
_INVALID_REPLICATION_FACTOR = 38

# Producer batch size of the checkpoint transactions (aiokafka's default is 16 KiB).
BATCH_BYTES = 512 * 1024
# The largest record batch a worker writes to the topics it produces to (state, DLQ,
# snapshots): a checkpoint batch plus Kafka's batch overhead. Every single record is
# bounded below it (README, "Reliability"). Checked against each topic's
# max.message.bytes, not assumed (#12).
REQUIRED_MESSAGE_BYTES = BATCH_BYTES + 1024

log = logging.getLogger(__name__)


class TopicsError(Exception):
    """Raised when the topics cannot be created or do not fit the settings."""


def aiokafka_security(settings: Settings) -> dict[str, Any]:
    """Return the aiokafka client keyword arguments for the configured security."""
    sec = settings.kafka
    kwargs: dict[str, Any] = {"security_protocol": sec.protocol}
    context = ssl_context(settings)
    if context is not None:
        kwargs["ssl_context"] = context
    if sec.protocol.startswith("SASL"):
        kwargs["sasl_mechanism"] = sec.sasl_mechanism
        kwargs["sasl_plain_username"] = sec.sasl_username
        kwargs["sasl_plain_password"] = (
            sec.sasl_password.get_secret_value() if sec.sasl_password else None
        )
    return kwargs


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """Return the TLS context of the SSL and SASL_SSL protocols (None for the others).

    The broker's certificate is verified against ``ssl_cafile`` (or the system CAs); with
    ``ssl_certfile`` the client presents its own certificate (mutual TLS).
    """
    sec = settings.kafka
    if sec.protocol not in ("SSL", "SASL_SSL"):
        return None
    context = ssl.create_default_context(
        purpose=ssl.Purpose.SERVER_AUTH,
        cafile=str(sec.ssl_cafile) if sec.ssl_cafile else None,
    )
    if sec.ssl_certfile is not None:
        context.load_cert_chain(
            str(sec.ssl_certfile),
            str(sec.ssl_keyfile) if sec.ssl_keyfile else None,
            sec.ssl_key_password.get_secret_value() if sec.ssl_key_password else None,
        )
    return context


def source_topics(settings: Settings) -> list[str]:
    """Return the event topics a worker consumes, plus the DLQ and snapshots it produces to."""
    t = settings.topics
    return [t.pageviews, t.emails, t.orders, t.adspend, t.surveys, t.dlq, t.snapshots]


def state_topic_name(settings: Settings) -> str:
    """Return the name of the compacted KPI state topic."""
    return f"{settings.app_id}-kpi-state"


# The state topic keeps the latest value per key; tombstones are what deletes state.
STATE_TOPIC_CONFIG = {"cleanup.policy": "compact", "segment.ms": "3600000"}


async def ensure_topics(
    settings: Settings,
    *,
    progress: Callable[[str], None] = lambda _msg: None,
    create: bool = True,
) -> list[str]:
    """Create missing topics with ``topic_partitions`` partitions; return the names created.

    Created with ``topic_replication_factor`` replicas. Existing input topics and the state
    topic must have exactly ``topic_partitions`` partitions: partition p of every input
    topic is counted by one engine whose state lives in partition p of the state topic.
    Every existing topic is checked before any missing one is created, so a mismatch
    leaves the cluster as it was. With ``create=False`` only the check runs (#12).
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.app_id}-admin",
        request_timeout_ms=15_000,
        **aiokafka_security(settings),
    )
    try:
        await admin.start()
    except Exception as exc:  # aiokafka raises a zoo of types for "cannot connect"
        raise TopicsError(
            f"cannot reach Kafka at {settings.bootstrap_servers} with protocol "
            f"{settings.kafka.protocol} (check bootstrap_servers and the kafka.* security "
            f"settings): {exc}"
        ) from exc
    try:
        wanted = [*source_topics(settings), state_topic_name(settings)]
        # list_topics() asks for all topics: asking for missing ones by name could make a
        # broker with auto.create.topics.enable create them with its default partitions.
        existing = set(await admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        # Output topics are keyed by hash, not co-partitioned: any partition count will do.
        outputs = {settings.topics.dlq, settings.topics.snapshots}
        present = [name for name in wanted if name in existing and name not in outputs]
        if present:
            for info in await admin.describe_topics(present):
                count = len(info["partitions"])
                if count != settings.topic_partitions:
                    raise TopicsError(
                        f"topic {info['topic']!r} has {count} partitions but topic_partitions is "
                        f"{settings.topic_partitions}; set STREAMKPI_TOPIC_PARTITIONS={count}"
                    )
        if missing and create:
            await _create(admin, settings, missing, progress)
        written = (state_topic_name(settings), settings.topics.dlq, settings.topics.snapshots)
        await _check_message_limits(admin, [name for name in written if create or name in existing])
        return missing if create else []
    finally:
        await admin.close()


async def _check_message_limits(admin: AIOKafkaAdminClient, topics: list[str]) -> None:
    """Refuse topics whose max.message.bytes is below what a checkpoint may write to them.

    A checkpoint batch the broker refuses aborts the checkpoint, every time: the worker
    would exit and restart forever. Without the DescribeConfigs permission the limit
    cannot be read; that is a warning, not an error.
    """
    if not topics:
        return
    resources = [
        ConfigResource(ConfigResourceType.TOPIC, name, {"max.message.bytes": None})
        for name in topics
    ]
    try:
        responses = await admin.describe_configs(resources)
    except Exception as exc:  # a check, not a requirement
        log.warning("cannot read max.message.bytes of %s: %r", ", ".join(topics), exc)
        return
    for response in responses:
        for error_code, error_message, _type, name, entries in response.resources:
            if error_code:
                log.warning(
                    "cannot read max.message.bytes of %s: error %d %s",
                    name,
                    error_code,
                    error_message,
                )
                continue
            for entry in entries:
                if entry[0] == "max.message.bytes" and int(entry[1]) < REQUIRED_MESSAGE_BYTES:
                    raise TopicsError(
                        f"topic {name!r} has max.message.bytes={entry[1]}, but a checkpoint "
                        f"writes record batches of up to {REQUIRED_MESSAGE_BYTES} bytes to it; "
                        f"raise it: kafka-configs.sh --alter --entity-type topics "
                        f"--entity-name {name} --add-config "
                        f"max.message.bytes={REQUIRED_MESSAGE_BYTES}"
                    )


async def _create(
    admin: AIOKafkaAdminClient,
    settings: Settings,
    missing: list[str],
    progress: Callable[[str], None],
) -> None:
    replication_factor = settings.topic_replication_factor
    progress(
        f"creating topics {', '.join(missing)} ({settings.topic_partitions} "
        f"partitions, replication factor {replication_factor})"
    )
    compacted = {state_topic_name(settings), settings.topics.snapshots}
    response = await admin.create_topics(
        [
            NewTopic(
                name,
                settings.topic_partitions,
                replication_factor,
                topic_configs=STATE_TOPIC_CONFIG if name in compacted else {},
            )
            for name in missing
        ]
    )
    for name, code, *_ in response.topic_errors:
        if code == _INVALID_REPLICATION_FACTOR:
            raise TopicsError(
                f"cannot create topic {name!r} with replication factor "
                f"{replication_factor}: the cluster has fewer brokers; lower "
                "topic_replication_factor (STREAMKPI_TOPIC_REPLICATION_FACTOR)"
            )
        if code not in (0, _TOPIC_ALREADY_EXISTS):
            raise TopicsError(f"cannot create topic {name!r}: Kafka error code {code}")
