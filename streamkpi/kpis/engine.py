"""PartitionEngine: all KPI state of one source partition, as plain Python.

A worker owns partition *p* of every source topic; the engine of *p* counts the
components of ``spec.COMPONENTS`` exactly as README.md, "KPI definitions", says. It knows
no Faust, Kafka, asyncio or clock: the wiring passes each parsed record with its offset,
idle watermark advances, and the scrape's reference time. State leaves it as *entries*
(``take_dirty``: what changed since the last call, keys in ``codec``) and comes back
with ``restore``; an engine restored from every entry taken so far behaves exactly like
the one that produced them.

Per topic-partition (one per kind): a watermark, the next offset, the remembered event
ids and the timers of that kind. Per partition: the label caps (in processing order
across all kinds), the bucket cells, and bucket expiry by the highest watermark.

The parts: ``buckets`` (cells, expiry), ``windows`` (running window sums), ``labels``
(caps, interned label tuples), ``dedup``, ``timers`` (the wheel), the rules of each kind
(``sessions``, ``email``, ``orders``, ``stateless``) and ``codec`` (entry keys, values).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal, localcontext
from typing import Any, Final

from streamkpi.events import (
    AdSpendEvent,
    EmailEvent,
    Event,
    Kind,
    OrderEvent,
    PageviewEvent,
    SurveyEvent,
)
from streamkpi.exporter.pipeline import Outcome
from streamkpi.kpis import codec
from streamkpi.kpis.buckets import MONEY, BucketStore, Family
from streamkpi.kpis.config import EngineConfig
from streamkpi.kpis.dedup import Dedup
from streamkpi.kpis.email import EMAILS, Emails
from streamkpi.kpis.labels import LabelCap, LabelSpace
from streamkpi.kpis.orders import ORDERS, Orders
from streamkpi.kpis.sessions import LANDING, PAGEVIEWS, Sessions
from streamkpi.kpis.spec import COMPONENTS, Labels
from streamkpi.kpis.stateless import ADSPEND, SURVEYS, AdSpend, Surveys
from streamkpi.kpis.windows import WindowSums

__all__ = ["FAMILIES", "EngineConfig", "IncompatibleState", "PartitionEngine", "Value"]

IncompatibleState = codec.IncompatibleState

# Every counted component lives in at least one family (a test holds the spec to this).
FAMILIES: Final[tuple[Family, ...]] = (PAGEVIEWS, LANDING, EMAILS, ORDERS, ADSPEND, SURVEYS)

# The one stock of the spec, derived per window from the orders family.
_ACTIVE: Final = "active_customers"
_ACTIVATIONS: Final = "customer_activations"
_CHURNED: Final = "churned_customers"
if {c.name for c in COMPONENTS if c.stock} != {_ACTIVE}:
    raise RuntimeError("the engine derives only the active_customers stock; teach it the new one")

_MODELS: Final[dict[Kind, type[Event]]] = {
    Kind.pageviews: PageviewEvent,
    Kind.emails: EmailEvent,
    Kind.orders: OrderEvent,
    Kind.adspend: AdSpendEvent,
    Kind.surveys: SurveyEvent,
}

Value = int | Decimal
Entry = tuple[bytes, bytes | None]


class _Topic:
    """The state of one topic-partition: watermark, next offset, ids, rules."""

    __slots__ = (
        "apply",
        "dedup",
        "dirty",
        "fire",
        "kind",
        "model",
        "next_offset",
        "refusal",
        "wm",
    )

    def __init__(
        self,
        kind: Kind,
        dedup: Dedup,
        apply: Callable[[Any, float | None], None],
        fire: Callable[[float], None],
    ) -> None:
        self.kind = kind
        self.model = _MODELS[kind]
        self.wm: float | None = None
        self.next_offset = 0
        self.dedup = dedup
        self.apply = apply
        self.fire = fire
        # Set for rules that can refuse a valid event (a state bound, #12): orders.
        self.refusal: Callable[[Any], str | None] | None = None
        self.dirty = False


class PartitionEngine:
    """All KPI state of one partition number, for all five kinds."""

    def __init__(self, partition: int, config: EngineConfig) -> None:
        """Start empty: no watermark, nothing counted, every offset 0."""
        self.partition = partition
        self.config = config
        self._lateness_s = config.allowed_lateness_s
        self._campaigns = LabelCap("campaign", config.max_campaigns, config.campaign_allowlist)
        self._pages = LabelCap("page", config.max_pages)
        self._cc = LabelSpace()
        self._pg = LabelSpace()
        self._spaces = {Labels.campaign_channel: self._cc, Labels.page: self._pg}
        self._store = BucketStore(
            FAMILIES,
            self._spaces,
            config.bucket_s,
            keep_s=config.longest_window_s + config.allowed_lateness_s,
        )
        self._windows = WindowSums(self._store, config.window_s)
        self._sessions = Sessions(
            config, self._store, self._campaigns, self._pages, self._cc, self._pg
        )
        self._emails = Emails(config, self._store, self._campaigns, self._cc)
        self._orders = Orders(config, self._store, self._campaigns, self._cc)
        adspend = AdSpend(config, self._store, self._campaigns, self._cc)
        surveys = Surveys(config, self._store, self._campaigns, self._cc)
        rules: dict[Kind, tuple[Callable[[Any, float | None], None], Callable[[float], None]]] = {
            Kind.pageviews: (self._sessions.apply, self._sessions.fire),
            Kind.emails: (self._emails.apply, self._emails.fire),
            Kind.orders: (self._orders.apply, self._orders.fire),
            Kind.adspend: (adspend.apply, adspend.fire),
            Kind.surveys: (surveys.apply, surveys.fire),
        }
        self._topics = {
            kind: _Topic(
                kind, Dedup(kind.value, config.dedup_horizon_s, config.bucket_s), *rules[kind]
            )
            for kind in Kind
        }
        self._topics[Kind.orders].refusal = self._orders.refusal
        # Why the last record that was ``Outcome.invalid`` was refused (for its dead letter).
        self.refused = ""
        self._max_wm = -math.inf
        self._meta_written = False

    # -- records ---------------------------------------------------------------------------

    def process(self, kind: Kind, event: Event, offset: int) -> Outcome:
        """Count one parsed record of ``kind`` at ``offset``; say what became of it.

        Step order (README): duplicate check, late check, the state bounds (an event that
        would pass one is ``Outcome.invalid``, counts nothing and leaves ``refused`` saying
        why), the kind's rules, raise the watermark, fire the timers due. The wiring skips
        offsets below ``next_offset``.
        """
        topic = self._topics[kind]
        if type(event) is not topic.model:
            raise TypeError(f"{kind.value} record is a {type(event).__name__}")
        topic.next_offset = offset + 1
        topic.dirty = True
        wm = topic.wm
        dedup = topic.dedup
        if dedup.seen(event.event_id, wm):
            return Outcome.duplicate
        ts = event.ts_s
        if wm is not None and ts < wm:
            return Outcome.late
        if topic.refusal is not None:
            refused = topic.refusal(event)
            if refused is not None:
                self.refused = refused
                return Outcome.invalid
        dedup.remember(event.event_id, ts)
        topic.apply(event, wm)
        new_wm = ts - self._lateness_s
        if wm is None or new_wm > wm:
            self._advance(topic, new_wm)
        return Outcome.accepted

    def record_offset(self, kind: Kind, offset: int) -> None:
        """Move past a record that counts nothing (it was dead-lettered as invalid)."""
        topic = self._topics[kind]
        topic.next_offset = offset + 1
        topic.dirty = True

    def next_offset(self, kind: Kind) -> int:
        """Return the offset after the last record of ``kind`` seen (0 if none)."""
        return self._topics[kind].next_offset

    def watermark(self, kind: Kind) -> float | None:
        """Return the watermark of ``kind`` (None before its first accepted event)."""
        return self._topics[kind].wm

    def advance_watermark(self, kind: Kind, watermark_s: float) -> None:
        """Raise the watermark of ``kind`` to ``watermark_s`` (idle topic) and fire its timers.

        A lower value than the current watermark changes nothing.
        """
        topic = self._topics[kind]
        if topic.wm is None or watermark_s > topic.wm:
            topic.dirty = True
            self._advance(topic, watermark_s)

    def _advance(self, topic: _Topic, wm: float) -> None:
        topic.wm = wm
        topic.fire(wm)
        topic.dedup.expire(wm)
        if wm > self._max_wm:
            self._max_wm = wm
            if wm >= self._store.next_expiry_wm:
                self._store.expire(wm)

    # -- reading ---------------------------------------------------------------------------

    @property
    def dropped_writes(self) -> int:
        """Count updates of expired buckets, dropped (process-local, not checkpointed)."""
        return self._store.dropped_writes

    @property
    def label_overflows(self) -> dict[str, int]:
        """Count values folded into ``other``, by label (process-local, not checkpointed)."""
        return {"campaign": self._campaigns.overflows, "page": self._pages.overflows}

    def window_values(
        self, reference_s: float
    ) -> Iterator[tuple[str, str, tuple[str, ...], Value]]:
        """Yield (component, window, label values, value) for the windows ending at ``reference_s``.

        Windows in config order (shortest first), components in spec order; zeros are
        left out. ``active_customers`` of a window is the number active at its start: the
        active count now, minus the window's activations, plus its churns (by activation
        labels). Keeps running sums between calls, so consecutive scrapes are cheap.
        """
        windows = self._windows
        windows.refresh(reference_s)
        active = self._orders.active_counts()
        labels_of = {Labels.campaign_channel: self._cc.labels, Labels.page: self._pg.labels}
        with localcontext(MONEY):
            for i, window in enumerate(windows.labels):
                totals: dict[str, dict[int, Value]] = {}
                for family, sums in zip(FAMILIES, windows.sums[i], strict=True):
                    names = family.components
                    for gid, row in sums.items():
                        for pos, value in enumerate(row):
                            if value:
                                per = totals.setdefault(names[pos], {})
                                per[gid] = per.get(gid, 0) + value
                for spec in COMPONENTS:
                    labels = labels_of[spec.labels]
                    if spec.stock:
                        values = self._active_at_start(active, totals)
                    else:
                        values = totals.get(spec.name, {})
                    for gid, value in values.items():
                        if value:
                            yield spec.name, window, labels[gid], value

    @staticmethod
    def _active_at_start(
        active: dict[int, int], totals: dict[str, dict[int, Value]]
    ) -> dict[int, Value]:
        activations = totals.get(_ACTIVATIONS, {})
        churned = totals.get(_CHURNED, {})
        return {
            gid: active.get(gid, 0) - activations.get(gid, 0) + churned.get(gid, 0)
            for gid in {*active, *activations, *churned}
        }

    def bucket_values(self) -> Iterator[tuple[str, int, tuple[str, ...], Value]]:
        """Yield (component, bucket start, label values, value) of every non-zero cell value.

        For tests and debugging: a component kept in two families is summed.
        """
        totals: dict[tuple[str, int, Labels, int], Value] = {}
        with localcontext(MONEY):
            for family_index, start, gid, row in self._store.cells():
                family = FAMILIES[family_index]
                for pos, value in enumerate(row):
                    if value:
                        key = (family.components[pos], start, family.labels, gid)
                        totals[key] = totals.get(key, 0) + value
        labels_of = {Labels.campaign_channel: self._cc.labels, Labels.page: self._pg.labels}
        for (name, start, space, gid), value in totals.items():
            if value:
                yield name, start, labels_of[space][gid], value

    def active_customers(self) -> dict[tuple[str, str], int]:
        """Return the customers active now, by the (campaign, channel) of their activation."""
        labels = self._cc.labels
        result: dict[tuple[str, str], int] = {}
        for gid, count in self._orders.active_counts().items():
            campaign, channel = labels[gid]
            result[(campaign, channel)] = count
        return result

    # -- state entries ---------------------------------------------------------------------

    def take_dirty(self) -> list[Entry]:
        """Return the entries changed since the last call: (key, value or None to delete).

        O(changes). The order is deterministic for a given sequence of calls; each key
        appears at most once.
        """
        out: list[Entry] = []
        if not self._meta_written:
            out.append((codec.META, self._meta()))
            self._meta_written = True
        for topic in self._topics.values():
            if topic.dirty:
                key = codec.text_key(codec.WATERMARK, topic.kind.value)
                out.append((key, codec.dumps([topic.wm, topic.next_offset])))
                topic.dirty = False
        for cap, code in ((self._campaigns, b"c|"), (self._pages, b"p|")):
            for value, ordinal in cap.take_new():
                out.append((codec.text_key(codec.LABEL + code, value), codec.dumps(ordinal)))
        self._store.take_dirty(out)
        self._sessions.take_dirty(out)
        self._emails.take_dirty(out)
        self._orders.take_dirty(out)
        for topic in self._topics.values():
            topic.dedup.take_dirty(out)
        return out

    def _meta(self) -> bytes:
        return codec.dumps({"schema": codec.SCHEMA, "bucket_s": self.config.bucket_s})

    @classmethod
    def restore(
        cls, partition: int, config: EngineConfig, entries: Iterable[tuple[bytes, bytes | None]]
    ) -> PartitionEngine:
        """Rebuild the engine of ``partition`` from its entries, in log order.

        The last value of a key wins; a None value (tombstone) deletes the key, so the raw
        log of the state topic can be passed as it is read. Raise ``IncompatibleState`` if
        the entries were written with another schema or bucket size.
        """
        latest: dict[bytes, bytes] = {}
        for key, value in entries:
            if value is None:
                latest.pop(key, None)
            else:
                latest[key] = value
        engine = cls(partition, config)
        meta = latest.pop(codec.META, None)
        if meta is not None:
            found = codec.loads(meta)
            expected = codec.loads(engine._meta())
            if found != expected:
                raise IncompatibleState(
                    f"state of partition {partition} was written with {found}, this engine"
                    f" has {expected}"
                )
            engine._meta_written = True
        labels: list[tuple[int, LabelCap, str]] = []
        chunks: dict[Kind, dict[int, dict[int, bytes]]] = {kind: {} for kind in Kind}
        for key, value in latest.items():
            prefix, rest = key[:2], key[2:]
            if prefix == codec.BUCKET:
                engine._store.load(rest, value)
            elif prefix == codec.VISITOR:
                engine._sessions.load(rest, value)
            elif prefix == codec.DEDUP:
                kind_name, slot, n = rest.split(b"|")
                per_slot = chunks[Kind(kind_name.decode())].setdefault(int(slot), {})
                per_slot[int(n)] = value
            elif prefix == codec.PAIR:
                engine._emails.load(rest, value)
            elif prefix == codec.CUSTOMER:
                engine._orders.load(rest, value)
            elif prefix == codec.WATERMARK:
                topic = engine._topics[Kind(rest.decode())]
                topic.wm, topic.next_offset = codec.loads(value)
            elif prefix == codec.LABEL:
                cap = engine._campaigns if rest[:2] == b"c|" else engine._pages
                labels.append((codec.loads(value), cap, rest[2:].decode()))
            else:
                raise IncompatibleState(f"unknown state entry {key!r}")
        for ordinal, cap, name in sorted(labels, key=lambda item: item[0]):
            cap.load(name, ordinal)
        for kind, topic in engine._topics.items():
            topic.dedup.load(chunks[kind])
        wms = [topic.wm for topic in engine._topics.values() if topic.wm is not None]
        if wms:
            engine._max_wm = max(wms)
            engine._store.expire(engine._max_wm)
        engine._sessions.rebuild_timers()
        engine._emails.rebuild_timers()
        engine._orders.rebuild_timers(engine._topics[Kind.orders].wm)
        for topic in engine._topics.values():
            if topic.wm is not None:  # nothing is due unless the entries were inconsistent
                topic.fire(topic.wm)
                topic.dedup.expire(topic.wm)
        return engine

    def debug_state(self) -> dict[str, Any]:
        """Return every piece of state as plain values, for tests to compare two engines.

        O(state). Process-local label ids and timer bookkeeping are left out; dedup chunks
        are replaced by the remembered ids.
        """
        out: list[Entry] = []
        self._store.take_all(out)
        self._sessions.take_all(out)
        self._emails.take_all(out)
        self._orders.take_all(out)
        state: dict[str, Any] = {key.decode(): codec.loads(value) for key, value in out if value}
        for kind, topic in self._topics.items():
            state[f"w|{kind.value}"] = [topic.wm, topic.next_offset]
            state[f"d|{kind.value}"] = dict(sorted(topic.dedup.ids.items()))
        for cap in (self._campaigns, self._pages):
            state[f"l|{cap.kind}"] = dict(cap.admitted)
        return dict(sorted(state.items()))
