"""E-mails: event counts and first opens/clicks per (recipient, campaign) (README, "E-mails").

A pair remembers which firsts it has seen, the ts of its first delivery and the latest ts
of any of its events. First opens and clicks are counted in the bucket of the pair's
first delivery (#11: a delivery cohort, so an open rate never exceeds 1 whatever the
window); seen before any delivery, they wait for it. An event arriving more than
``email_memory_s`` after the latest ts finds the memory forgotten; the pair is dropped
once the watermark passes latest + ``email_memory_s``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from streamkpi.events import EmailEvent
from streamkpi.kpis import codec
from streamkpi.kpis.buckets import BucketStore, Family
from streamkpi.kpis.config import EngineConfig
from streamkpi.kpis.labels import LabelCap, LabelSpace
from streamkpi.kpis.timers import Wheel

__all__ = ["EMAILS", "Emails", "Pair"]

EMAILS: Final = Family(
    "em",
    (
        "emails_sent",
        "emails_delivered",
        "emails_bounced",
        "email_unique_opens",
        "email_machine_opens",
        "email_unique_clicks",
        "email_unsubscribes",
        "email_complaints",
    ),
)
# Types counted every time.
_PLAIN: Final = {
    "sent": EMAILS.pos("emails_sent"),
    "delivered": EMAILS.pos("emails_delivered"),
    "bounced": EMAILS.pos("emails_bounced"),
    "unsubscribed": EMAILS.pos("email_unsubscribes"),
    "complained": EMAILS.pos("email_complaints"),
}
_UNIQUE_OPENS: Final = EMAILS.pos("email_unique_opens")
_MACHINE_OPENS: Final = EMAILS.pos("email_machine_opens")
_UNIQUE_CLICKS: Final = EMAILS.pos("email_unique_clicks")

OPENED: Final = 1
MACHINE_OPENED: Final = 2
CLICKED: Final = 4

PairKey = tuple[str, str]  # (recipient_id, campaign as sent, before the label cap)


_FIRSTS: Final = (
    (OPENED, _UNIQUE_OPENS),
    (MACHINE_OPENED, _MACHINE_OPENS),
    (CLICKED, _UNIQUE_CLICKS),
)


class Pair:
    """What one (recipient, campaign) has seen, its first delivery and its latest event ts."""

    __slots__ = ("delivered", "flags", "latest")

    def __init__(self, latest: float, flags: int = 0, delivered: float | None = None) -> None:
        """Remember a pair."""
        self.latest = latest
        self.flags = flags  # the firsts seen (counted once ``delivered`` is known)
        self.delivered = delivered  # ts of the first delivery


class Emails:
    """The e-mail rules over the recipients of one partition."""

    def __init__(
        self, config: EngineConfig, store: BucketStore, campaigns: LabelCap, cc: LabelSpace
    ) -> None:
        """Count into ``store``."""
        self._store = store
        self._family = store.family_index(EMAILS)
        self._bucket_s = config.bucket_s
        self._memory_s = config.email_memory_s
        self._campaigns = campaigns
        self._cc = cc
        self.pairs: dict[PairKey, Pair] = {}
        self._forget: Wheel[PairKey] = Wheel(config.bucket_s)
        self.dirty: dict[PairKey, None] = {}

    def apply(self, event: EmailEvent, wm: float | None) -> None:
        """Apply one accepted e-mails event."""
        ts = event.ts_s
        key = (event.recipient_id, event.campaign)
        pair = self.pairs.get(key)
        if pair is None:
            pair = self.pairs[key] = Pair(ts)
            self._forget.add(ts + self._memory_s, key)
        else:
            if ts > pair.latest + self._memory_s:
                pair.flags = 0  # forgotten
                pair.delivered = None
            if ts > pair.latest:
                pair.latest = ts
        self.dirty[key] = None
        gid = self._cc.gid((self._campaigns.resolve(event.campaign), "email"))
        kind = event.type
        pos = _PLAIN.get(kind)
        bucket_s = self._bucket_s
        if pos is not None:
            cell = self._store.cell(self._family, int(ts // bucket_s) * bucket_s, gid)
            if cell is not None:
                values, at = cell
                values[at + pos] += 1
                if kind == "delivered" and pair.delivered is None:
                    pair.delivered = ts
                    for flag, first in _FIRSTS:  # the firsts seen before the delivery
                        if pair.flags & flag:
                            values[at + first] += 1
            elif kind == "delivered" and pair.delivered is None:
                pair.delivered = ts
            return
        if kind == "opened":
            new = (MACHINE_OPENED if event.machine_open else OPENED) & ~pair.flags
        else:  # clicked: a click proves a human open (images blocked)
            new = (CLICKED | OPENED) & ~pair.flags
        if not new:
            return
        pair.flags |= new
        if pair.delivered is None:
            return  # counted with the first delivery
        cell = self._store.cell(self._family, int(pair.delivered // bucket_s) * bucket_s, gid)
        if cell is not None:
            values, at = cell
            for flag, first in _FIRSTS:
                if new & flag:
                    values[at + first] += 1

    def fire(self, wm: float) -> None:
        """Drop the pairs forgotten at watermark ``wm``."""
        forget = self._forget
        if wm < forget.next_due_s:
            return
        pairs = self.pairs
        memory_s = self._memory_s
        for k, keys in forget.due(wm):
            for key in keys:
                expiry = pairs[key].latest + memory_s
                if forget.slot(expiry) <= k:
                    del pairs[key]
                    self.dirty[key] = None
                else:
                    forget.add(expiry, key)

    def take_dirty(self, out: list[tuple[bytes, bytes | None]]) -> None:
        """Append the entries of the pairs changed since the last call to ``out``."""
        self._encode(self.dirty, out)
        self.dirty.clear()

    def take_all(self, out: list[tuple[bytes, bytes | None]]) -> None:
        """Append the entries of all pairs to ``out`` (O(state): for tests and debugging)."""
        self._encode(list(self.pairs), out)

    def _encode(self, keys: Iterable[PairKey], out: list[tuple[bytes, bytes | None]]) -> None:
        for key in keys:
            pair = self.pairs.get(key)
            out.append(
                (
                    codec.json_key(codec.PAIR, list(key)),
                    None
                    if pair is None
                    else codec.dumps([pair.latest, pair.flags, pair.delivered]),
                )
            )

    def load(self, key_rest: bytes, value: bytes) -> None:
        """Restore one pair entry (key without its ``e|`` prefix)."""
        recipient, campaign = codec.loads(key_rest)
        latest, flags, delivered = codec.loads(value)
        self.pairs[(recipient, campaign)] = Pair(latest, flags, delivered)

    def rebuild_timers(self) -> None:
        """File every restored pair in the wheel."""
        for key, pair in self.pairs.items():
            self._forget.add(pair.latest + self._memory_s, key)
