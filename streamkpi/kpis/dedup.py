"""Remembered event ids of one topic-partition (README, "Duplicates").

An accepted event's id is remembered until the watermark passes ``ts + dedup_horizon_s``.
Ids are filed by ts slot; a slot is forgotten whole once the watermark is past
``slot end + horizon`` (every id in it has passed its own time by then). Until then the
check compares the id's exact ``ts`` with the watermark, so the result never depends on
the slot size.

State entries are append-only *chunks* per slot (``d|<kind>|<slot>|<n>``: the ids
accepted since the previous take_dirty), tombstoned together when the slot is forgotten:
one entry per slot and checkpoint instead of one per event.
"""

from __future__ import annotations

from typing import Final

from streamkpi.kpis import codec
from streamkpi.kpis.timers import Wheel

__all__ = ["Dedup"]

CHUNK_IDS: Final = 1000  # at most this many ids per chunk entry
# A chunk is also bounded in bytes (#12): 1,000 ids of 1.1 KB made a 1.1 MB chunk that the
# broker refused. An id costs at most 6 JSON bytes per UTF-16 unit (\uXXXX) plus the
# brackets, quotes and its ts (< 40 B); a chunk closes before that bound passes this.
CHUNK_BYTES: Final = 256 * 1024
_ID_OVERHEAD: Final = 40


def _id_bound(event_id: str) -> int:
    """Return an upper bound of the JSON bytes of ``[event_id, ts],`` in a chunk."""
    return 6 * len(event_id) + _ID_OVERHEAD


class Dedup:
    """Event ids -> ts, filed by ts slot, forgotten slot by slot as the watermark moves."""

    def __init__(self, kind: str, horizon_s: int, slot_s: int) -> None:
        """Remember nothing yet."""
        self._prefix = codec.DEDUP + kind.encode() + b"|"
        self.horizon_s = horizon_s
        self.ids: dict[str, float] = {}
        self._wheel: Wheel[str] = Wheel(slot_s, delay_s=horizon_s)
        self._emitted: dict[int, int] = {}  # slot -> ids of its list already in chunks
        self._chunks: dict[int, int] = {}  # slot -> chunks written
        self._dirty: dict[int, None] = {}
        self._tombstones: list[bytes] = []

    def seen(self, event_id: str, wm: float | None) -> bool:
        """Say whether ``event_id`` is remembered at watermark ``wm``."""
        ts = self.ids.get(event_id)
        return ts is not None and (wm is None or wm <= ts + self.horizon_s)

    def remember(self, event_id: str, ts_s: float) -> None:
        """Remember an accepted event's id."""
        self.ids[event_id] = ts_s
        self._dirty[self._wheel.add(ts_s, event_id)] = None

    def expire(self, wm: float) -> None:
        """Forget the slots the watermark ``wm`` is past."""
        wheel = self._wheel
        if wm < wheel.next_due_s:
            return
        ids = self.ids
        slot_s = wheel.slot_s
        for k, keys in wheel.due(wm):
            for event_id in keys:
                ts = ids.get(event_id)
                # An id re-accepted later (after it was forgotten) is filed in its new slot.
                if ts is not None and int(ts // slot_s) == k:
                    del ids[event_id]
            for n in range(self._chunks.pop(k, 0)):
                self._tombstones.append(b"%s%d|%d" % (self._prefix, k, n))
            self._emitted.pop(k, None)
            self._dirty.pop(k, None)

    def take_dirty(self, out: list[tuple[bytes, bytes | None]]) -> None:
        """Append tombstones of forgotten slots and chunks of newly remembered ids to ``out``."""
        out.extend((key, None) for key in self._tombstones)
        self._tombstones.clear()
        ids = self.ids
        for k in self._dirty:
            keys = self._wheel.keys(k)
            if keys is None:
                continue
            done = self._emitted.get(k, 0)
            n = self._chunks.get(k, 0)
            first = done
            while first < len(keys):
                end, size = first, 0
                while end < len(keys) and end - first < CHUNK_IDS:
                    size += _id_bound(keys[end])
                    if size > CHUNK_BYTES and end > first:
                        break
                    end += 1
                chunk = [[event_id, ids[event_id]] for event_id in keys[first:end]]
                out.append((b"%s%d|%d" % (self._prefix, k, n), codec.dumps(chunk)))
                n += 1
                first = end
            self._emitted[k] = len(keys)
            self._chunks[k] = n
        self._dirty.clear()

    def load(self, chunks: dict[int, dict[int, bytes]]) -> None:
        """Restore from chunk entries: slot -> chunk number -> value."""
        ids = self.ids
        for k, numbered in sorted(chunks.items()):
            count = 0
            for n in sorted(numbered):
                for event_id, ts in codec.loads(numbered[n]):
                    self._wheel.add_to(k, event_id)
                    count += 1
                    previous = ids.get(event_id)
                    if previous is None or ts > previous:
                        ids[event_id] = ts
            self._emitted[k] = count
            self._chunks[k] = max(numbered) + 1

    def __len__(self) -> int:
        """Return the number of remembered ids."""
        return len(self.ids)
