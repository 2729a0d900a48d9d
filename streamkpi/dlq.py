"""Dead-letter records: the original bytes, where they came from and why they were refused."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime

from streamkpi import jsonbytes

__all__ = [
    "MAX_KEY_PREVIEW",
    "MAX_VALUE_PREVIEW",
    "DeadLetter",
    "dead_letter_headers",
    "dlq_key",
    "encode_dead_letter",
]

# Bounds of a DLQ record (#12): a 600 KB key or an 850 KB value made a dead letter the
# broker refused (its default max.message.bytes is 1 MiB), so it vanished. The key and
# value kept are previews; key_size / value_size keep the original sizes. Base64 makes
# 4/3: 256 KiB + 1 KiB of previews stay ~350 KB, far below 1 MiB.
MAX_KEY_PREVIEW = 1024
MAX_VALUE_PREVIEW = 256 * 1024

# Schema version of the DLQ record; bump when a field changes meaning.
DLQ_SCHEMA = 1


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One refused Kafka record and the reason it was refused."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes
    reason: str
    detail: str


def encode_dead_letter(letter: DeadLetter, *, max_value_bytes: int, now_s: float) -> bytes:
    """Serialize a DeadLetter to the JSON value of a DLQ record.

    The original value is kept base64-encoded (it may not be UTF-8) and truncated to
    ``max_value_bytes`` so an oversized event cannot make the DLQ record itself too large
    for the broker; ``value_size`` and ``value_truncated`` say whether that happened.
    """
    kept = letter.value[: min(max_value_bytes, MAX_VALUE_PREVIEW)]
    key = None if letter.key is None else letter.key[:MAX_KEY_PREVIEW]
    record = {
        "schema": DLQ_SCHEMA,
        "reason": letter.reason,
        "detail": letter.detail,
        "source": {
            "topic": letter.topic,
            "partition": letter.partition,
            "offset": letter.offset,
            "timestamp_ms": letter.timestamp_ms,
        },
        "key_b64": None if key is None else base64.b64encode(key).decode("ascii"),
        "key_size": None if letter.key is None else len(letter.key),
        "key_truncated": letter.key is not None and len(letter.key) > MAX_KEY_PREVIEW,
        "value_b64": base64.b64encode(kept).decode("ascii"),
        "value_size": len(letter.value),
        "value_truncated": len(kept) < len(letter.value),
        "dead_lettered_at": datetime.fromtimestamp(now_s, UTC).isoformat(),
    }
    return jsonbytes.dumps(record)


def dlq_key(letter: DeadLetter) -> bytes | None:
    """Return the DLQ record's key: the source key, cut to ``MAX_KEY_PREVIEW`` bytes."""
    return None if letter.key is None else letter.key[:MAX_KEY_PREVIEW]


def dead_letter_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    """Return Kafka headers that let tools filter the DLQ without parsing values."""
    return [
        ("streamkpi.reason", letter.reason.encode()),
        ("streamkpi.source", f"{letter.topic}/{letter.partition}/{letter.offset}".encode()),
    ]
