"""Live marketing traffic: the batch generator's entities, arriving now, at a chosen rate.

The same builders as ``streamkpi.generator.stream`` (visits, e-mail lives, shopping
episodes, ad-spend ticks, survey answers) are driven by arrival processes in event time:
visitors land from campaigns with their own funnels (visit -> engage -> cart -> purchase),
e-mail campaigns send continuously, ad spend is reported per campaign and channel every
minute, NPS answers trickle in. Arrivals follow a daily rhythm around the mean ``rate``
(events/s). An entity's later events (the next pages, an open an hour after delivery, the
purchase after the cart) wait in a queue until their event time comes: ``advance(now_s)``
returns the records due by ``now_s``, so a caller that calls it with the wall clock
produces events whose time is now. Deterministic: the same config and start give the
same records for the same sequence of ``advance`` calls' final time.
"""

from __future__ import annotations

import collections
import heapq
import math
import random
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from streamkpi.events import Kind
from streamkpi.generator.incidents import Incident, IncidentError, IncidentKind, alter
from streamkpi.generator.stream import (
    OTHER_REFERRERS,
    SEARCH_REFERRERS,
    SOCIAL_REFERRERS,
    Funnel,
    GenConfig,
    Record,
    Sim,
    adspend_tick,
    dump_json,
    emit_mailing,
    emit_shopping,
    emit_visit,
    invalid_value,
    partition_for,
    survey_answer,
    ts_value,
)

__all__ = [
    "CAMPAIGNS",
    "LONGEST_ALERT_WINDOW_S",
    "SEND_TO_OPEN_S",
    "Campaign",
    "LiveConfig",
    "LiveGenerator",
    "Source",
    "check_incidents",
    "daily_rhythm",
    "longest_funnel_delay_s",
    "steady_backfill_s",
]


@dataclass(frozen=True)
class Source:
    """A way visitors land from a campaign: the channel and the landing hit's fields."""

    channel: str
    fields: Mapping[str, str]


@dataclass(frozen=True)
class Campaign:
    """A marketing campaign of the live stream.

    ``weight`` is its share of the campaign visits; ``funnel`` how far they go;
    ``buy_rate`` the chance a cart is bought; ``email_weight`` its share of the e-mail
    sends (0: no newsletter); ``roas`` the return on ad spend its ad costs are set for
    (None: no ad spend).
    """

    name: str
    weight: float
    sources: tuple[Source, ...]
    funnel: Funnel
    buy_rate: float = 0.5
    email_weight: float = 0.0
    roas: float | None = None


def _utm(source: str, medium: str, campaign: str) -> Mapping[str, str]:
    return {"utm_source": source, "utm_medium": medium, "campaign": campaign}


# Funnels are what makes the campaigns' KPIs differ: brand search converts, influencer
# traffic bounces, retargeting fills carts, the webinar collects signups.
CAMPAIGNS: Final = (
    Campaign(
        "spring_sale",
        0.30,
        (
            Source("paid", _utm("google", "cpc", "spring_sale")),
            Source("email", _utm("newsletter", "email", "spring_sale")),
        ),
        Funnel((35, 20, 14, 10, 8, 6, 4, 3), 0.30, 0.04, 0.10, 0.05),
        buy_rate=0.55,
        email_weight=0.5,
        roas=4.0,
    ),
    Campaign(
        "black_friday",
        0.20,
        (
            Source("paid", _utm("facebook", "display", "black_friday")),
            Source("email", _utm("newsletter", "email", "black_friday")),
        ),
        Funnel((30, 20, 15, 11, 9, 7, 4, 4), 0.35, 0.03, 0.16, 0.09),
        buy_rate=0.65,
        email_weight=0.3,
        roas=6.0,
    ),
    Campaign(
        "brand_search",
        0.20,
        (Source("paid", _utm("google", "cpc", "brand_search")),),
        Funnel((25, 20, 15, 12, 10, 8, 5, 5), 0.40, 0.08, 0.14, 0.10),
        buy_rate=0.70,
        roas=9.0,
    ),
    Campaign(
        "retargeting_q4",
        0.12,
        (Source("paid", _utm("criteo", "retargeting", "retargeting_q4")),),
        Funnel((30, 22, 15, 11, 9, 6, 4, 3), 0.30, 0.02, 0.20, 0.06),
        buy_rate=0.35,
        roas=3.0,
    ),
    Campaign(
        "influencer_x",
        0.13,
        (Source("social", _utm("instagram", "social", "influencer_x")),),
        Funnel((65, 15, 8, 5, 3, 2, 1, 1), 0.15, 0.02, 0.03, 0.01),
        buy_rate=0.40,
        # 1.2 sat so close to the ROAS alert's 1.0 that the noisy 1h value crossed it (#11).
        roas=2.0,
    ),
    Campaign(
        "webinar_ai",
        0.05,
        (
            Source("social", _utm("linkedin", "social", "webinar_ai")),
            Source("email", _utm("newsletter", "email", "webinar_ai")),
        ),
        Funnel((40, 20, 14, 10, 7, 5, 2, 2), 0.30, 0.25, 0.01, 0.005),
        buy_rate=0.50,
        email_weight=0.2,
        # A lead-generation campaign: signups, few purchases. Its ad costs are set for a
        # ROAS of 2 (was 0.8, which raised StreamKPIROASLow in every healthy demo, #11);
        # `--incident conversion-drop:campaign=webinar_ai` is the unhealthy case.
        roas=2.0,
    ),
)

# Visits without a campaign: search, social and other referrers, typed-in URLs.
_UNTAGGED_FUNNEL: Final = Funnel()
_UNTAGGED: Final = (
    (0.45, "organic", "search"),
    (0.30, "direct", None),
    (0.15, "social", "social"),
    (0.10, "referral", "other"),
)
_REFERRERS: Final = {
    "search": SEARCH_REFERRERS,
    "social": SOCIAL_REFERRERS,
    "other": OTHER_REFERRERS,
}


# The longest alert window of the shipped alerts (windows: {short: 5m, long: 1h}).
LONGEST_ALERT_WINDOW_S: Final = 3600.0
# The builders' delays (streamkpi.generator.stream): a next page comes 3-180 s after the
# previous one, an engagement takes up to 20 s, a key event up to 30 s after the last
# page, the purchase up to 40 min after the cart (which comes with the visit's end).
_PAGE_GAP_MAX_S: Final = 180.0
_ENGAGEMENT_MAX_S: Final = 20.0
_KEY_EVENT_GAP_MAX_S: Final = 30.0
_KEY_EVENTS: Final = 3  # signup, add_to_cart, purchase
_CART_TO_PURCHASE_MAX_S: Final = 2400.0
# Opens follow their delivery (<= 30 s after the send) by an exponential delay of mean
# 40 min: 99 % of the first opens come within 40 min x ln(100) = 3 h 4 min.
SEND_TO_OPEN_S: Final = 30.0 + 2400.0 * math.log(100)


def longest_funnel_delay_s(campaigns: tuple[Campaign, ...] = CAMPAIGNS) -> float:
    """Return the longest time from a visit's landing to its purchase, in seconds.

    The longest visit of any funnel (campaigns' and the untagged one's): every page after
    the landing at the longest page gap, an engagement after each page, every key event;
    then the longest cart -> purchase delay.
    """
    pages = max(len(f.page_weights) for f in [c.funnel for c in campaigns] + [_UNTAGGED_FUNNEL])
    visit_s = (
        (pages - 1) * _PAGE_GAP_MAX_S
        + pages * _ENGAGEMENT_MAX_S
        + _KEY_EVENTS * _KEY_EVENT_GAP_MAX_S
    )
    return visit_s + _CART_TO_PURCHASE_MAX_S


def steady_backfill_s(
    campaigns: tuple[Campaign, ...] = CAMPAIGNS,
    longest_window_s: float = LONGEST_ALERT_WINDOW_S,
) -> float:
    """Return the backfill after which the alert windows' KPIs are at their steady state.

    The longest window needs, at its oldest edge, every purchase of the visits before it
    (ROAS, CPA, revenue, abandonment: the spend and the carts are there from the first
    second, the purchases trail by up to the longest funnel delay). Opens are covered by
    the e-mail warm-up instead (``LiveConfig.warmup_s``): their sends are simulated, not
    produced. Rounded up to the minute: 2 h 6 min for the shipped campaigns.
    """
    return math.ceil((longest_funnel_delay_s(campaigns) + longest_window_s) / 60) * 60


def daily_rhythm(ts_s: float, swing: float) -> float:
    """Return the traffic multiplier at ``ts_s``: 1 + swing at 20:00 UTC, 1 - swing at 08:00.

    Its mean over a day is 1, so ``rate`` stays the daily mean.
    """
    hour = (ts_s % 86_400) / 3600
    return 1 + swing * math.cos(2 * math.pi * (hour - 20) / 24)


@dataclass(frozen=True)
class LiveConfig:
    """What the live stream looks like.

    ``rate`` is the mean events/s over a day (``daily_swing`` moves it by up to that
    fraction); ``campaign_share`` of the visits come from ``campaigns``; a
    ``returning_share`` of the visitors were seen before (returning visitors, and
    returning customers when they buy again). ``warmup_s`` of e-mail sends are simulated
    before the first event produced and only their later events produced (opens and
    clicks of earlier sends), so open and click rates start at their steady state: the
    default 3 h covers 99 % of the send -> open delays (``SEND_TO_OPEN_S``). Visits are
    not warmed up: a visit whose landing hit is not produced would count as a new, bounced session.
    ``backfill_s`` of traffic before the start are produced at once by the first
    ``advance`` (in event-time order), so trailing windows hold data from the first
    second; ``steady_backfill_s()`` is the length after which every KPI of the alert
    windows is at its steady state. A worker counts backfilled events older than its
    watermark as late: one that has already seen newer events (or idled for
    ``idle_after_s``, when its watermark follows the clock) counts only the last
    ``allowed_lateness_s``; a fresh worker on fresh topics counts all of it.
    ``invalid_rate`` adds malformed messages. ``email_bounce_rate`` of the
    e-mails bounce: a healthy sender's 1.5 % (deliverability ~98.5 %, clear of the
    shipped 95 % alert), before any ``deliverability-drop``.
    """

    rate: float = 100.0
    seed: int = 1
    partitions: int = 4
    daily_swing: float = 0.3
    campaigns: tuple[Campaign, ...] = CAMPAIGNS
    campaign_share: float = 0.6
    returning_share: float = 0.3
    # Budget shares of the event rate: visits (with their orders), e-mails, surveys.
    visit_share: float = 0.75
    email_share: float = 0.22
    survey_share: float = 0.02
    adspend_every_s: float = 60.0
    currencies: tuple[str, ...] = ("EUR",)
    incidents: tuple[Incident, ...] = ()
    warmup_s: float = 3 * 3600.0
    backfill_s: float = 0.0
    disorder_s: float = 2.0
    invalid_rate: float = 0.0
    email_bounce_rate: float = 0.015

    def __post_init__(self) -> None:
        """Refuse a config that cannot be generated."""
        if not 0 < self.rate <= 1_000_000:
            raise ValueError("rate must be in (0, 1000000] events/s")
        if not 0 <= self.daily_swing < 1:
            raise ValueError("daily_swing must be in [0, 1)")
        if self.partitions < 1:
            raise ValueError("partitions must be at least 1")
        if not self.campaigns:
            raise ValueError("at least one campaign is needed")
        if not 0 <= self.invalid_rate < 1:
            raise ValueError("invalid_rate must be in [0, 1)")
        if self.adspend_every_s <= 0 or self.warmup_s < 0 or self.backfill_s < 0:
            raise ValueError(
                "adspend_every_s must be positive, warmup_s and backfill_s not negative"
            )
        check_incidents(self.incidents, self.campaigns)


def check_incidents(incidents: Iterable[Incident], campaigns: tuple[Campaign, ...]) -> None:
    """Refuse incidents that would change nothing: an unknown campaign, no e-mail to drop."""
    names = [c.name for c in campaigns]
    mailing = [c.name for c in campaigns if c.email_weight > 0]
    for incident in incidents:
        if incident.campaign is None:
            continue
        if incident.campaign not in names:
            raise IncidentError(
                f"{incident.kind}: unknown campaign {incident.campaign!r} "
                f"(campaigns: {', '.join(names)})"
            )
        if incident.kind is IncidentKind.deliverability_drop and incident.campaign not in mailing:
            raise IncidentError(
                f"deliverability-drop: campaign {incident.campaign!r} sends no e-mail "
                f"(e-mail campaigns: {', '.join(mailing) or 'none'})"
            )


@dataclass(order=True)
class _Pending:
    due_ms: int
    seq: int
    kind: Kind = field(compare=False)
    key: str = field(compare=False)
    ts_ms: int = field(compare=False)
    fields: dict[str, Any] = field(compare=False)


class _LiveSim(Sim):
    """The builders' sink: queues events by due time, applying the incidents on the way."""

    def __init__(self, gen: LiveGenerator, rng: random.Random) -> None:
        config = gen.config
        super().__init__(
            GenConfig(
                seed=config.seed,
                start_s=gen.origin_s,
                duration_s=100 * 365 * 86_400.0,
                partitions=config.partitions,
                disorder_s=config.disorder_s,
                email_bounce_rate=config.email_bounce_rate,
            ),
            rng,
        )
        self.gen = gen
        self.id_prefix = gen.run_tag + "-"
        self.context_campaign: str | None = None
        # The landing page of the visit being built ("" for none); None outside a visit,
        # and before its landing hit.
        self.in_visit = False
        self.context_page: str | None = None
        self.context_landing_ms = 0
        self.key_events: list[str] = []
        # (due, seq, event): tuples compare in C, the dataclass's __lt__ in Python (a fifth
        # of a backfill's time went there).
        self.queue: list[tuple[int, int, _Pending]] = []
        self.seq = 0

    def emit(
        self, kind: Kind, key: str, ts_ms: int, fields: dict[str, Any], jitter_ms: int
    ) -> None:
        """Queue an event of the run (those before the start are warm-up, not produced)."""
        if kind is Kind.pageviews and fields.get("type") == "key_event":
            self.key_events.append(fields["name"])
        landing_hit = False
        if self.in_visit and self.context_page is None and kind is Kind.pageviews:
            landing_hit = True
            self.context_page = fields.get("page", "")
            self.context_landing_ms = ts_ms
        gen = self.gen
        if ts_ms < gen.first_ms or ts_ms > gen.end_ms:
            return
        campaign = self.context_campaign or fields.get("campaign")
        altered = alter(
            gen.config.incidents,
            kind,
            fields,
            elapsed_s=(ts_ms - gen.origin_ms) / 1000,
            campaign=campaign,
            entity=key,
            landing_page=self.context_page,
            landing_hit=landing_hit,
            landing_elapsed_s=(self.context_landing_ms - gen.origin_ms) / 1000
            if self.context_page is not None
            else None,
        )
        if altered is None:
            gen.suppressed += 1
            return
        self.seq += 1
        due_ms = ts_ms + jitter_ms
        pending = _Pending(due_ms, self.seq, kind, key, ts_ms, altered)
        heapq.heappush(self.queue, (due_ms, self.seq, pending))


class _Arrivals:
    """A Poisson arrival process with a (slowly varying) rate per second."""

    def __init__(self, rng: random.Random, rate: Callable[[float], float], first_ms: int) -> None:
        self.rng = rng
        self.rate = rate
        self.next_ms = first_ms
        self.advance()

    def advance(self) -> None:
        rate = self.rate(self.next_ms / 1000)
        if rate <= 0:
            self.next_ms = 2**62  # never
            return
        self.next_ms += max(1, round(self.rng.expovariate(rate) * 1000))


class LiveGenerator:
    """The live stream from ``origin_s`` on (for ``duration_s``, or for ever if None)."""

    def __init__(
        self, config: LiveConfig, origin_s: float, duration_s: float | None = None
    ) -> None:
        """Calibrate the arrival rates so that the events add up to ``config.rate``."""
        self.config = config
        self.origin_s = origin_s
        self.origin_ms = round(origin_s * 1000)
        # The first event time produced: the backfill starts this far in the past.
        self.first_ms = self.origin_ms - round(config.backfill_s * 1000)
        self.end_ms = 2**62 if duration_s is None else self.origin_ms + round(duration_s * 1000)
        # Ids unique per run: the worker remembers event ids for an hour (dedup), and
        # carts and orders by id, so a restarted demo must not reuse them.
        self.run_tag = f"g{config.seed}t{self.origin_ms // 1000:x}"
        self.suppressed = 0
        self.produced = dict.fromkeys(Kind, 0)
        seed = config.seed
        self._rng = random.Random(f"{seed}:live:{self.origin_ms}")
        self._bytes_rng = random.Random(f"{seed}:live-bytes:{self.origin_ms}")
        self._sim = _LiveSim(self, random.Random(f"{seed}:live-sim:{self.origin_ms}"))
        self._visitors = 0
        self._known_visitors: list[str] = []
        self._resting: collections.deque[tuple[int, str]] = collections.deque()
        self._recipients = 0
        self._respondents = 0
        self._counters = dict.fromkeys(Kind, 0)
        per_visit, per_mailing, revenue_per_visit = self._calibrate()
        campaigns = config.campaigns
        self._campaign_weights = [c.weight for c in campaigns]
        self._email_campaigns = [c for c in campaigns if c.email_weight > 0]
        swing = config.daily_swing
        visits_s = config.rate * config.visit_share / per_visit
        mailings_s = config.rate * config.email_share / per_mailing if self._email_campaigns else 0
        surveys_s = config.rate * config.survey_share
        first_ms = self.first_ms
        warm_ms = first_ms - round(config.warmup_s * 1000)
        self._visit_rate_s = visits_s
        self._processes: list[tuple[_Arrivals, Callable[[int], None]]] = [
            (
                _Arrivals(self._rng, lambda t: visits_s * daily_rhythm(t, swing), first_ms),
                self._new_visit,
            ),
            (_Arrivals(self._rng, lambda _t: mailings_s, warm_ms), self._new_mailing),
            (
                _Arrivals(self._rng, lambda t: surveys_s * daily_rhythm(t, swing), first_ms),
                self._new_answer,
            ),
        ]
        every_ms = round(config.adspend_every_s * 1000)
        self._next_tick_ms = first_ms - first_ms % every_ms + every_ms
        # Cost per tick so that each campaign's ROAS is about its target on average.
        self._tick_costs: list[tuple[str, str, int]] = []
        total_weight = sum(self._campaign_weights)
        for campaign in campaigns:
            if campaign.roas is None:
                continue
            visits = visits_s * config.campaign_share * campaign.weight / total_weight
            revenue = visits * revenue_per_visit[campaign.name] * config.adspend_every_s
            channels = sorted({s.channel for s in campaign.sources if s.channel != "email"})
            for channel in channels or ["paid"]:
                cents = max(1, round(100 * revenue / campaign.roas / max(1, len(channels))))
                self._tick_costs.append((campaign.name, channel, cents))

    # -- calibration -------------------------------------------------------------------

    def _calibrate(self) -> tuple[float, float, dict[str, float]]:
        """Return events per visit, per mailing, and revenue (EUR) per visit per campaign.

        Measured on a scratch simulation (its own seed, nothing produced), so the arrival
        rates can be set from ``rate``.
        """
        scratch = Sim(
            GenConfig(seed=self.config.seed, start_s=0, duration_s=1e9, disorder_s=0),
            random.Random(f"{self.config.seed}:calibrate"),
        )
        samples = 400
        revenue: dict[str, float] = {}
        visit_events = 0
        for campaign in self.config.campaigns:
            before = len(scratch.events)
            for index in range(samples):
                source = campaign.sources[index % len(campaign.sources)]
                self._visit_and_shop(scratch, f"cal{index}", 0, campaign, source)
            events = scratch.events[before:]
            visit_events += len(events)
            cents = sum(
                _cents(e.fields["amount"]) for e in events if e.fields.get("type") == "purchase"
            )
            revenue[campaign.name] = cents / 100 / samples
        per_campaign_visit = visit_events / (samples * len(self.config.campaigns))
        before = len(scratch.events)
        for index in range(samples):
            self._visit_and_shop(scratch, f"cal{index}", 0, None, None)
        per_untagged_visit = (len(scratch.events) - before) / samples
        share = self.config.campaign_share
        per_visit = share * per_campaign_visit + (1 - share) * per_untagged_visit
        before = len(scratch.events)
        for index in range(samples):
            emit_mailing(scratch, "cal", f"cal{index}", 0)
        per_mailing = (len(scratch.events) - before) / samples
        return per_visit, per_mailing, revenue

    # -- entities ----------------------------------------------------------------------

    def _visit_and_shop(
        self,
        sim: Sim,
        visitor: str,
        t_ms: int,
        campaign: Campaign | None,
        source: Source | None,
    ) -> None:
        """One visit and, if it put something in the cart or bought, a shopping episode."""
        rng = sim.rng
        if campaign is not None and source is not None:
            fields = dict(source.fields)
            channel: str | None = source.channel
            funnel = campaign.funnel
        else:
            draw = rng.random()
            fields, channel = {}, "direct"
            for share, channel_name, referrers in _UNTAGGED:
                if draw < share:
                    if referrers is not None:
                        fields = {"referrer": rng.choice(_REFERRERS[referrers])}
                    channel = channel_name
                    break
                draw -= share
            funnel = _UNTAGGED_FUNNEL
        session_id = f"{visitor}-{t_ms:x}" if rng.random() < 0.3 else None
        if isinstance(sim, _LiveSim):
            sim.key_events = []
            sim.context_campaign = campaign.name if campaign is not None else None
            sim.in_visit, sim.context_page = True, None
        before = len(sim.events)
        t_ms = emit_visit(sim, visitor, t_ms, session_id, funnel=funnel, source=fields)
        key_events = (
            sim.key_events
            if isinstance(sim, _LiveSim)
            else [
                e.fields["name"] for e in sim.events[before:] if e.fields.get("type") == "key_event"
            ]
        )
        if "add_to_cart" in key_events or "purchase" in key_events:
            customer = "cu" + visitor
            base: dict[str, Any] = {"customer_id": customer, "visitor_id": visitor}
            if session_id is not None:
                base["session_id"] = session_id
            if campaign is not None:
                base["campaign"] = campaign.name
            if channel is not None:
                base["channel"] = channel
            currencies = self.config.currencies
            currency = currencies[zlib.crc32(customer.encode()) % len(currencies)]
            buy_rate = 0.95 if "purchase" in key_events else (campaign or _DEFAULT).buy_rate
            emit_shopping(sim, base, currency, t_ms, sim.burst_jitter(), buy_rate=buy_rate)
        if isinstance(sim, _LiveSim):
            sim.context_campaign = None
            sim.in_visit, sim.context_page = False, None

    def _new_visit(self, t_ms: int) -> None:
        rng = self._rng
        config = self.config
        known = self._known_visitors
        while self._resting and self._resting[0][0] <= t_ms:
            # A bounded memory of earlier visitors, of whom the returning ones are drawn.
            _, rested = self._resting.popleft()
            if len(known) < _KNOWN_VISITORS:
                known.append(rested)
            else:
                known[rng.randrange(_KNOWN_VISITORS)] = rested
        if known and rng.random() < config.returning_share:
            index = rng.randrange(len(known))
            visitor = known[index]
            known[index] = known[-1]
            known.pop()
        else:
            self._visitors += 1
            visitor = f"v{self.run_tag}-{self._visitors}"
        # Visitors come back after the session gap (else their visits would merge).
        self._resting.append((t_ms + _RETURN_AFTER_MS, visitor))
        if rng.random() < config.campaign_share:
            campaign = rng.choices(config.campaigns, weights=self._campaign_weights)[0]
            source = rng.choice(campaign.sources)
            self._visit_and_shop(self._sim, visitor, t_ms, campaign, source)
        else:
            self._visit_and_shop(self._sim, visitor, t_ms, None, None)

    def _new_mailing(self, t_ms: int) -> None:
        campaigns = self._email_campaigns
        campaign = self._rng.choices(campaigns, weights=[c.email_weight for c in campaigns])[0]
        self._recipients += 1
        sim = self._sim
        sim.context_campaign = campaign.name
        emit_mailing(sim, campaign.name, f"r{self.run_tag}-{self._recipients}", t_ms)
        sim.context_campaign = None

    def _new_answer(self, t_ms: int) -> None:
        self._respondents += 1
        names = [c.name for c in self.config.campaigns]
        fields = survey_answer(self._rng, f"n{self.run_tag}-{self._respondents}", names)
        self._sim.emit(Kind.surveys, fields["respondent_id"], t_ms, fields, self._sim.jitter())

    def _adspend(self, tick_ms: int) -> None:
        spread_ms = min(30_000, round(self.config.adspend_every_s * 1000))
        usd_share = 0.2 if "USD" in self.config.currencies else 0.0
        for campaign, channel, cents in self._tick_costs:
            low, high = max(1, cents * 7 // 10), max(1, cents * 13 // 10)
            adspend_tick(
                self._sim, tick_ms, [(campaign, channel)], (low, high), spread_ms, usd_share
            )

    # -- output ------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Return how many future events wait in the queue."""
        return len(self._sim.queue)

    def target_rate(self, now_s: float) -> float:
        """Return the events/s the stream aims at around ``now_s`` (the rhythm applied)."""
        return self.config.rate * daily_rhythm(now_s, self.config.daily_swing)

    def advance(self, now_s: float) -> list[Record]:
        """Simulate arrivals up to ``now_s``; return the records due by then, in order."""
        now_ms = min(round(now_s * 1000), self.end_ms)
        every_ms = round(self.config.adspend_every_s * 1000)
        while True:
            arrivals, handler = min(self._processes, key=lambda p: p[0].next_ms)
            if self._next_tick_ms <= min(arrivals.next_ms, now_ms):
                self._adspend(self._next_tick_ms)
                self._next_tick_ms += every_ms
                continue
            if arrivals.next_ms > now_ms:
                break
            handler(arrivals.next_ms)
            arrivals.advance()
        records: list[Record] = []
        queue = self._sim.queue
        while queue and queue[0][0] <= now_ms:
            _, _, pending = heapq.heappop(queue)
            records.extend(self._records(pending))
        return records

    def _records(self, event: _Pending) -> list[Record]:
        kind = event.kind
        key = event.key.encode()
        partition = partition_for(key, self.config.partitions)
        payload = self._payload(kind, event.ts_ms, event.fields)
        out = [Record(kind, partition, key, dump_json(payload))]
        self.produced[kind] += 1
        rng = self._bytes_rng
        if self.config.invalid_rate and rng.random() < self.config.invalid_rate:
            broken = self._payload(kind, event.ts_ms, event.fields)
            value = invalid_value(rng, kind, broken, event.ts_ms, 65_536)
            out.append(Record(kind, partition, key, value))
        return out

    def _payload(self, kind: Kind, ts_ms: int, fields: dict[str, Any]) -> dict[str, Any]:
        self._counters[kind] += 1
        event_id = f"{self.run_tag}-{kind.value[:2]}{self._counters[kind]}"
        return {"event_id": event_id, "ts": ts_value(self._bytes_rng, ts_ms)} | fields


_KNOWN_VISITORS: Final = 50_000
_RETURN_AFTER_MS: Final = 45 * 60_000  # > the 30 min session gap
_DEFAULT: Final = Campaign("none", 1.0, (), Funnel(), buy_rate=0.5)


def _cents(amount: str | int | float) -> int:
    return round(float(amount) * 100)


def utc(ts_s: float) -> str:
    """Return ``ts_s`` as an ISO UTC time to the second (for progress lines)."""
    return datetime.fromtimestamp(ts_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
