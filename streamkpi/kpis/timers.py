"""A timer wheel: keys filed in time slots, popped as the watermark passes each slot.

Used for state whose expiry has no visible effect of its own (a session that ended, a
visitor, e-mail pair or customer forgotten, a dedup id): the rules read the exact times
kept in the state, so expiring up to one slot late changes no count; it only bounds
memory. A key is filed once; when its slot comes up and its time has moved on, the caller
files it again under its new time (lazy rescheduling: one entry per key, not one per
event). Timers with a visible effect (cart abandonment, churn) use an exact heap instead.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from typing import Generic, TypeVar

__all__ = ["Wheel"]

K = TypeVar("K")


class Wheel(Generic[K]):
    """Keys by slot ``floor(time / slot_s)``; slot k is due once ``wm >= (k+1)*slot_s + delay_s``.

    A due slot holds only keys whose filed time is below ``wm - delay_s``.
    """

    def __init__(self, slot_s: float, delay_s: float = 0.0) -> None:
        """Start empty."""
        self.slot_s = slot_s
        self.delay_s = delay_s
        self._slots: dict[int, list[K]] = {}
        self._heap: list[int] = []
        # The watermark at which the earliest slot is due: one comparison on the hot path.
        self.next_due_s = math.inf

    def slot(self, time_s: float) -> int:
        """Return the slot of ``time_s``."""
        return int(time_s // self.slot_s)

    def add(self, time_s: float, key: K) -> int:
        """File ``key`` under ``time_s``; return its slot."""
        k = int(time_s // self.slot_s)
        self.add_to(k, key)
        return k

    def add_to(self, k: int, key: K) -> None:
        """File ``key`` in slot ``k``."""
        keys = self._slots.get(k)
        if keys is None:
            self._slots[k] = [key]
            heapq.heappush(self._heap, k)
            if self._heap[0] == k:
                self.next_due_s = (k + 1) * self.slot_s + self.delay_s
        else:
            keys.append(key)

    def keys(self, k: int) -> list[K] | None:
        """Return the keys filed in slot ``k`` (the live list), or None."""
        return self._slots.get(k)

    def due(self, wm: float) -> Iterator[tuple[int, list[K]]]:
        """Pop and yield the slots due at watermark ``wm``, earliest first.

        The caller may file keys while iterating; a key filed in a slot that is due is
        yielded in the same iteration.
        """
        heap = self._heap
        while wm >= self.next_due_s:
            k = heapq.heappop(heap)
            self.next_due_s = (heap[0] + 1) * self.slot_s + self.delay_s if heap else math.inf
            yield k, self._slots.pop(k)

    def __len__(self) -> int:
        """Return the number of filed keys (stale ones included)."""
        return sum(len(keys) for keys in self._slots.values())
