"""Dead-letter records keep the original bytes, the source coordinates and the reason."""

from __future__ import annotations

import base64
from dataclasses import replace

import orjson

from streamkpi.dlq import DeadLetter, dead_letter_headers, encode_dead_letter

LETTER = DeadLetter(
    topic="pageviews",
    partition=3,
    offset=42,
    timestamp_ms=1_700_000_000_123,
    key=b"v-1",
    value=b"\xff\xfenot json",
    reason="invalid_json",
    detail="not valid JSON",
)


def test_record_holds_original_bytes_source_and_reason() -> None:
    record = orjson.loads(encode_dead_letter(LETTER, max_value_bytes=1024, now_s=0.0))
    assert base64.b64decode(record["value_b64"]) == b"\xff\xfenot json"
    assert base64.b64decode(record["key_b64"]) == b"v-1"
    assert record["source"] == {
        "topic": "pageviews",
        "partition": 3,
        "offset": 42,
        "timestamp_ms": 1_700_000_000_123,
    }
    assert (record["reason"], record["detail"]) == ("invalid_json", "not valid JSON")
    assert (record["value_size"], record["value_truncated"]) == (10, False)
    assert record["dead_lettered_at"] == "1970-01-01T00:00:00+00:00"


def test_oversized_value_is_truncated_and_flagged() -> None:
    big = replace(LETTER, value=b"x" * 5000, reason="too_large")
    record = orjson.loads(encode_dead_letter(big, max_value_bytes=100, now_s=0.0))
    assert base64.b64decode(record["value_b64"]) == b"x" * 100
    assert (record["value_size"], record["value_truncated"]) == (5000, True)


def test_missing_key_is_null() -> None:
    keyless = replace(LETTER, key=None)
    assert (
        orjson.loads(encode_dead_letter(keyless, max_value_bytes=64, now_s=0.0))["key_b64"] is None
    )


def test_headers_name_reason_and_source() -> None:
    assert dict(dead_letter_headers(LETTER)) == {
        "streamkpi.reason": b"invalid_json",
        "streamkpi.source": b"pageviews/3/42",
    }


def test_a_huge_key_and_value_make_a_bounded_dead_letter() -> None:
    # #12: a 600 KB key (or an 850 KB value) made a DLQ record the broker refused.
    from streamkpi.dlq import dlq_key

    huge = replace(LETTER, key=b"k" * 600_000, value=b"v" * 850_000)
    encoded = encode_dead_letter(huge, max_value_bytes=900_000, now_s=0.0)
    assert len(encoded) < 400_000  # far below the broker's default 1 MiB
    record = orjson.loads(encoded)
    assert record["key_size"] == 600_000
    assert record["key_truncated"] is True
    assert base64.b64decode(record["key_b64"]) == b"k" * 1024
    assert record["value_size"] == 850_000
    assert record["value_truncated"] is True
    assert len(base64.b64decode(record["value_b64"])) == 256 * 1024
    assert dlq_key(huge) == b"k" * 1024
