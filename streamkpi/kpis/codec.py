"""State entries: stable keys and compact orjson values for the compacted state topic.

Every state item has one key; the latest value per key is the item's state and a
tombstone (None) deletes it. Keys never carry the partition (the state topic's partition
is the source partition already). Kinds of keys, by prefix:

=====================================  ===============================================
``m|``                                 schema and bucket size of the entries
``w|<kind>``                           ``[watermark, next_offset]`` of a topic-partition
``l|c|<campaign>``, ``l|p|<page>``     an admitted label value -> admission ordinal
``b|["<family>",<bucket>,<labels>..]`` a bucket cell: ``{component: value}`` (non-zero)
``v|<visitor_id>``                     ``[last_seen_ts, session or null]``
``e|["<recipient>","<campaign>"]``     an e-mail pair: ``[latest_ts, flags, delivered]``
``c|<customer_id>``                    ``[last_purchase_ts, activation labels, carts]``
``d|<kind>|<slot>|<n>``                chunk n of the event ids accepted in a ts slot
=====================================  ===============================================

Money is a decimal string, so nothing passes through a binary float.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

import orjson

from streamkpi import jsonbytes

__all__ = [
    "SCHEMA",
    "IncompatibleState",
    "dumps",
    "json_key",
    "loads",
    "text_key",
]

SCHEMA: Final = 2  # 2: e-mail pairs keep their first delivery; session flags (#11)

META: Final = b"m|"
WATERMARK: Final = b"w|"
LABEL: Final = b"l|"
BUCKET: Final = b"b|"
VISITOR: Final = b"v|"
PAIR: Final = b"e|"
CUSTOMER: Final = b"c|"
DEDUP: Final = b"d|"

loads = orjson.loads


class IncompatibleState(ValueError):
    """The entries were written with another schema or bucket size than this engine's."""


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """Encode a state value (Decimals as strings)."""
    return jsonbytes.dumps(value, default=_default)


def json_key(prefix: bytes, parts: list[Any]) -> bytes:
    """Return ``prefix`` + a JSON array: unambiguous for any strings in ``parts``."""
    return prefix + orjson.dumps(parts)


def text_key(prefix: bytes, text: str) -> bytes:
    """Return ``prefix`` + ``text``: a single free-form string needs no quoting."""
    return prefix + text.encode()
