"""Label values: the per-partition cap on campaigns and pages, and interned label tuples.

README, "Labels": per partition the first ``max`` distinct values in processing order (plus
an allowlist) keep their name, later ones fold into ``other``. The admitted set is state:
it is checkpointed (``l|`` entries) so that a restored engine folds exactly as before.
"""

from __future__ import annotations

from typing import Final

__all__ = ["NONE", "OTHER", "LabelCap", "LabelSpace"]

NONE: Final = "none"  # an absent campaign, page or channel
OTHER: Final = "other"  # where values past the cap fold


class LabelCap:
    """Admit the first ``max_values`` distinct values (plus ``allowlist``); fold the rest.

    An absent or empty value is ``none`` and takes no slot; allowlisted values take none
    either. ``resolve`` returns one canonical string object per value, so the labels held
    by sessions, carts and cells share their strings.
    """

    def __init__(self, kind: str, max_values: int, allowlist: frozenset[str] = frozenset()) -> None:
        """Start with nothing admitted."""
        self.kind = kind  # "campaign" or "page": names the counter and the state entries
        self.max_values = max_values
        # Value -> admission ordinal (processing order), allowlisted values excluded.
        self.admitted: dict[str, int] = {}
        self._known: dict[str, str] = {NONE: NONE}
        for value in sorted(allowlist):
            self._known[value] = value
        self.overflows = 0  # values folded into "other" (process-local counter)
        self.new: list[str] = []  # admitted since the last take_new

    def resolve(self, value: str | None) -> str:
        """Return the label for ``value``: itself if admitted (admitting it if there is room)."""
        if not value:
            return NONE
        known = self._known.get(value)
        if known is not None:
            return known
        if len(self.admitted) < self.max_values:
            self._admit(value)
            return value
        self.overflows += 1
        return OTHER

    def _admit(self, value: str) -> None:
        self.admitted[value] = len(self.admitted)
        self._known[value] = value
        self.new.append(value)

    def load(self, value: str, ordinal: int) -> None:
        """Restore one admission (call in ordinal order)."""
        if value in self._known:
            return  # allowlisted since: no slot needed
        self.admitted[value] = ordinal
        self._known[value] = value

    def take_new(self) -> list[tuple[str, int]]:
        """Return the admissions since the last call, with their ordinals."""
        if not self.new:
            return []
        new, self.new = self.new, []
        return [(value, self.admitted[value]) for value in new]


class LabelSpace:
    """Intern label tuples (e.g. ``(campaign, channel)``) as small ints for the bucket store.

    The ids are process-local (never checkpointed): entries carry the label strings.
    """

    def __init__(self) -> None:
        """Start empty."""
        self._ids: dict[tuple[str, ...], int] = {}
        self.labels: list[tuple[str, ...]] = []

    def gid(self, labels: tuple[str, ...]) -> int:
        """Return the id of ``labels``, assigning the next one on first sight."""
        found = self._ids.get(labels)
        if found is not None:
            return found
        # Plain str (not a StrEnum such as Channel) in what is exported and encoded.
        canonical = tuple(str.__str__(value) for value in labels)
        new = len(self.labels)
        self._ids[canonical] = new
        self.labels.append(canonical)
        return new

    def __len__(self) -> int:
        """Return how many label tuples are interned."""
        return len(self.labels)
