"""Pageviews: sessions and what hangs off them (README, "Pageviews: sessions ...").

State per visitor: the ts of their latest event (for ``new_visitors``, forgotten once the
watermark passes it + ``visitor_memory_s``) and their open session. Every outcome of a
session is counted once, when it is decided (#11): engaged / key event / converted at
the event that decides it; bounced / without key event / unconverted when the session
ends (the pageviews watermark reaches ``last + session_gap_s``: dated ``last + gap +
allowed_lateness_s``, the stream time at which that happens) or is replaced by a new
session (dated at the replacing event). A timer wheel files sessions by end in 1 s
slots; it fires up to a slot after the end, so ``apply`` tests the end time itself too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from streamkpi.events import PageviewEvent
from streamkpi.kpis import codec
from streamkpi.kpis.buckets import BucketStore, Family
from streamkpi.kpis.config import EngineConfig
from streamkpi.kpis.labels import LabelCap, LabelSpace
from streamkpi.kpis.timers import Wheel

__all__ = ["LANDING", "PAGEVIEWS", "Session", "Sessions"]

PAGEVIEWS: Final = Family(
    "pv",
    (
        "pageviews",
        "sessions",
        "new_visitors",
        "engaged_sessions",
        "bounced_sessions",
        "converted_sessions",
        "unconverted_sessions",
        "key_event_sessions",
        "sessions_without_key_event",
        "leads",
        "conversions",
    ),
)
LANDING: Final = Family(
    "lp", ("landing_sessions", "landing_engaged_sessions", "landing_bounced_sessions")
)

_PAGEVIEWS: Final = PAGEVIEWS.pos("pageviews")
_SESSIONS: Final = PAGEVIEWS.pos("sessions")
_NEW_VISITORS: Final = PAGEVIEWS.pos("new_visitors")
_ENGAGED: Final = PAGEVIEWS.pos("engaged_sessions")
_BOUNCED: Final = PAGEVIEWS.pos("bounced_sessions")
_CONVERTED: Final = PAGEVIEWS.pos("converted_sessions")
_UNCONVERTED: Final = PAGEVIEWS.pos("unconverted_sessions")
_KEY_EVENT: Final = PAGEVIEWS.pos("key_event_sessions")
_NO_KEY_EVENT: Final = PAGEVIEWS.pos("sessions_without_key_event")
_LEADS: Final = PAGEVIEWS.pos("leads")
_CONVERSIONS: Final = PAGEVIEWS.pos("conversions")
_LANDING: Final = LANDING.pos("landing_sessions")
_LANDING_ENGAGED: Final = LANDING.pos("landing_engaged_sessions")
_LANDING_BOUNCED: Final = LANDING.pos("landing_bounced_sessions")

ENGAGED: Final = 1
CONVERTED: Final = 2  # a purchase_event key event
KEY_EVENT: Final = 4  # any key event


class Session:
    """A visitor's session: its times, labels (as label ids) and engagement so far."""

    __slots__ = ("cc", "engaged_ms", "flags", "last", "page", "reg", "sid", "start", "views")

    def __init__(self, start: float, sid: str | None, cc: int, page: int) -> None:
        """Open a session at ``start``."""
        self.start = start
        self.last = start
        self.sid = sid
        self.cc = cc  # label id of (campaign, channel)
        self.page = page  # label id of (landing page,)
        self.views = 0  # page_view events so far
        self.engaged_ms = 0
        self.flags = 0  # ENGAGED | CONVERTED | KEY_EVENT
        self.reg = 0  # the wheel slot this session is filed in


class Sessions:
    """The pageview rules over the visitors of one partition."""

    def __init__(
        self,
        config: EngineConfig,
        store: BucketStore,
        campaigns: LabelCap,
        pages: LabelCap,
        cc: LabelSpace,
        pg: LabelSpace,
    ) -> None:
        """Count into ``store``; resolve labels with the caps; intern them in the spaces."""
        self._store = store
        self._pv = store.family_index(PAGEVIEWS)
        self._lp = store.family_index(LANDING)
        self._bucket_s = config.bucket_s
        self._gap_s = config.session_gap_s
        self._memory_s = config.visitor_memory_s
        self._engaged_ms = config.engaged_ms_threshold
        self._lateness_s = config.allowed_lateness_s
        self._lead_events = config.lead_events
        self._purchase_event = config.purchase_event
        self._campaigns = campaigns
        self._pages = pages
        self._cc = cc
        self._pg = pg
        self.seen: dict[str, float] = {}  # visitor -> latest ts of their events
        self.sessions: dict[str, Session] = {}
        # Sessions by end time, in 1 s slots: a bounce is written when its slot is due, and
        # bucket-sized slots (up to 60 s late) left the newest minute of the 5m window
        # without its bounces: 0.25 live against 0.28 true (#11, test_live_truth.py).
        self._ends: Wheel[str] = Wheel(1.0)
        self._forget: Wheel[str] = Wheel(config.bucket_s)  # visitors by memory expiry
        self.dirty: dict[str, None] = {}

    def apply(self, event: PageviewEvent, wm: float | None) -> None:
        """Apply one accepted pageviews event (``wm``: the watermark before it)."""
        visitor = event.visitor_id
        ts = event.ts_s
        gap_s = self._gap_s
        seen = self.seen
        last_seen = seen.get(visitor)
        if last_seen is None:
            seen[visitor] = ts
            self._forget.add(ts + self._memory_s, visitor)
        elif ts > last_seen:
            seen[visitor] = ts
        self.dirty[visitor] = None
        session = self.sessions.get(visitor)
        sid = event.session_id or None
        if (
            session is not None
            and (wm is None or session.last + gap_s > wm)  # not ended
            and (
                ts < session.last + gap_s
                if sid is None and session.sid is None
                else sid == session.sid
            )
        ):
            if ts > session.last:
                session.last = ts
        else:
            if session is not None:  # replaced: decided now, or at its end if it ended
                end = session.last + gap_s
                self._decide(
                    session, end + self._lateness_s if wm is not None and end <= wm else ts
                )
            session = self._start(visitor, event, sid, last_seen)
        kind = event.type
        store = self._store
        bucket_s = self._bucket_s
        if kind == "page_view":
            cell = store.cell(self._pv, int(ts // bucket_s) * bucket_s, session.cc)
            if cell is not None:
                values, at = cell
                values[at + _PAGEVIEWS] += 1
            session.views += 1
            if session.views == 2 and not session.flags & ENGAGED:
                self._engage(session, ts)
        elif kind == "engagement":
            # Saturating: engaged_ms is bounded per event (parse) but not its sum (#12).
            session.engaged_ms = min(session.engaged_ms + (event.engaged_ms or 0), 2**53)
            if session.engaged_ms >= self._engaged_ms and not session.flags & ENGAGED:
                self._engage(session, ts)
        else:  # key_event
            if not session.flags & ENGAGED:
                self._engage(session, ts)
            name = event.name
            lead = name in self._lead_events
            first = not session.flags & KEY_EVENT
            purchase = name == self._purchase_event and not session.flags & CONVERTED
            if lead or first or purchase:
                cell = store.cell(self._pv, int(ts // bucket_s) * bucket_s, session.cc)
                if cell is not None:
                    values, at = cell
                    if first:
                        values[at + _KEY_EVENT] += 1
                    if purchase:
                        values[at + _CONVERTED] += 1
                    if lead:
                        values[at + _LEADS] += 1
                        values[at + _CONVERSIONS] += 1
                session.flags |= KEY_EVENT | (CONVERTED if purchase else 0)

    def _start(
        self, visitor: str, event: PageviewEvent, sid: str | None, last_seen: float | None
    ) -> Session:
        ts = event.ts_s
        cc = self._cc.gid((self._campaigns.resolve(event.campaign), event.channel))
        page = self._pg.gid((self._pages.resolve(event.page),))
        session = self.sessions[visitor] = Session(ts, sid, cc, page)
        session.reg = self._ends.add(ts + self._gap_s, visitor)
        start = int(ts // self._bucket_s) * self._bucket_s
        cell = self._store.cell(self._pv, start, cc)
        if cell is not None:
            values, at = cell
            values[at + _SESSIONS] += 1
            if last_seen is None or last_seen < ts - self._memory_s:
                values[at + _NEW_VISITORS] += 1
        cell = self._store.cell(self._lp, start, page)
        if cell is not None:
            values, at = cell
            values[at + _LANDING] += 1
        return session

    def _engage(self, session: Session, ts: float) -> None:
        session.flags |= ENGAGED
        at_s = int(ts // self._bucket_s) * self._bucket_s
        cell = self._store.cell(self._pv, at_s, session.cc)
        if cell is not None:
            values, at = cell
            values[at + _ENGAGED] += 1
        cell = self._store.cell(self._lp, at_s, session.page)
        if cell is not None:
            values, at = cell
            values[at + _LANDING_ENGAGED] += 1

    def _decide(self, session: Session, ts: float) -> None:
        """Count the outcomes ``session`` did not reach, in the bucket of ``ts``."""
        flags = session.flags
        if flags == ENGAGED | CONVERTED | KEY_EVENT:
            return
        at_s = int(ts // self._bucket_s) * self._bucket_s
        cell = self._store.cell(self._pv, at_s, session.cc)
        if cell is not None:
            values, at = cell
            if not flags & ENGAGED:
                values[at + _BOUNCED] += 1
            if not flags & CONVERTED:
                values[at + _UNCONVERTED] += 1
            if not flags & KEY_EVENT:
                values[at + _NO_KEY_EVENT] += 1
        if not flags & ENGAGED:
            cell = self._store.cell(self._lp, at_s, session.page)
            if cell is not None:
                values, at = cell
                values[at + _LANDING_BOUNCED] += 1

    def fire(self, wm: float) -> None:
        """Drop the sessions that ended and the visitors forgotten at watermark ``wm``."""
        ends = self._ends
        if wm >= ends.next_due_s:
            sessions = self.sessions
            gap_s = self._gap_s
            for k, visitors in ends.due(wm):
                for visitor in visitors:
                    session = sessions.get(visitor)
                    if session is None or session.reg != k:
                        continue  # replaced by a session filed elsewhere
                    end = session.last + gap_s
                    if ends.slot(end) <= k:
                        self._decide(session, end + self._lateness_s)
                        del sessions[visitor]
                        self.dirty[visitor] = None
                    else:
                        session.reg = ends.add(end, visitor)
        forget = self._forget
        if wm >= forget.next_due_s:
            seen = self.seen
            memory_s = self._memory_s
            for k, visitors in forget.due(wm):
                for visitor in visitors:
                    expiry = seen[visitor] + memory_s
                    if forget.slot(expiry) <= k:
                        del seen[visitor]
                        self.dirty[visitor] = None
                    else:
                        forget.add(expiry, visitor)

    def take_dirty(self, out: list[tuple[bytes, bytes | None]]) -> None:
        """Append the entries of the visitors changed since the last call to ``out``."""
        self._encode(self.dirty, out)
        self.dirty.clear()

    def take_all(self, out: list[tuple[bytes, bytes | None]]) -> None:
        """Append the entries of all visitors to ``out`` (O(state): for tests and debugging)."""
        self._encode([*self.seen, *(v for v in self.sessions if v not in self.seen)], out)

    def _encode(self, keys: Iterable[str], out: list[tuple[bytes, bytes | None]]) -> None:
        cc = self._cc.labels
        pg = self._pg.labels
        for visitor in keys:
            key = codec.text_key(codec.VISITOR, visitor)
            last_seen = self.seen.get(visitor)
            s = self.sessions.get(visitor)
            if last_seen is None and s is None:
                out.append((key, None))
                continue
            encoded = None
            if s is not None:
                campaign, channel = cc[s.cc]
                encoded = [s.start, s.last, s.sid, campaign, channel, pg[s.page][0]]
                encoded += [s.views, s.engaged_ms, s.flags]
            out.append((key, codec.dumps([last_seen, encoded])))

    def load(self, key_rest: bytes, value: bytes) -> None:
        """Restore one visitor entry (key without its ``v|`` prefix)."""
        visitor = key_rest.decode()
        last_seen, encoded = codec.loads(value)
        if last_seen is not None:
            self.seen[visitor] = last_seen
        if encoded is not None:
            start, last, sid, campaign, channel, page, views, engaged_ms, flags = encoded
            s = Session(start, sid, self._cc.gid((campaign, channel)), self._pg.gid((page,)))
            s.last = last
            s.views = views
            s.engaged_ms = engaged_ms
            s.flags = flags
            self.sessions[visitor] = s

    def rebuild_timers(self) -> None:
        """File every restored visitor and session in the wheels."""
        for visitor, last_seen in self.seen.items():
            self._forget.add(last_seen + self._memory_s, visitor)
        for visitor, s in self.sessions.items():
            s.reg = self._ends.add(s.last + self._gap_s, visitor)
