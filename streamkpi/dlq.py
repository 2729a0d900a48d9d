"""Dead-letter records: the original bytes, where they came from and why they were refused."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime

from streamkpi import jsonbytes

__all__ = ["DeadLetter", "dead_letter_headers", "encode_dead_letter"]

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
    kept = letter.value[:max_value_bytes]
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
        "key_b64": None if letter.key is None else base64.b64encode(letter.key).decode("ascii"),
        "value_b64": base64.b64encode(kept).decode("ascii"),
        "value_size": len(letter.value),
        "value_truncated": len(kept) < len(letter.value),
        "dead_lettered_at": datetime.fromtimestamp(now_s, UTC).isoformat(),
    }
    return jsonbytes.dumps(record)


def dead_letter_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    """Return Kafka headers that let tools filter the DLQ without parsing values."""
    return [
        ("streamkpi.reason", letter.reason.encode()),
        ("streamkpi.source", f"{letter.topic}/{letter.partition}/{letter.offset}".encode()),
    ]
