"""Measure PartitionEngine on one core: events per second, and memory of a full day of buckets.

Usage: python benchmarks/engine_bench.py [--n N] [--rate R] [--repeat R] [--memory]

The event streams are generated inline with random.Random(1) and parsed before timing
(the engine gets what the wiring gives it: parsed models). Event time advances at
``--rate`` events per second of event time with a little disorder, a few duplicates and
late events; visitors, recipients and customers come back, so sessions, e-mail pairs and
carts are joined, engaged, bought and abandoned.

Figures: ``process`` alone; ``+ checkpoints`` adds take_dirty() every second of event
time (the default checkpoint interval) and window_values() every 15 s (a scrape);
``--memory`` fills an engine with 24 h of 1-minute buckets for 1,000 campaign x channel
keys and reports what it holds (tracemalloc) and the process RSS; ``--restore`` also
keeps the entries (a compacted state topic) and times a restore from them.
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamkpi.events import Event, Kind, ParseContext, Rejection, parse
from streamkpi.kpis.engine import EngineConfig, PartitionEngine

START_S = 1_767_225_600.0  # 2026-01-01T00:00:00Z
CTX = ParseContext(
    max_future_s=10 * 86_400,
    rates={"EUR": Decimal(1), "USD": Decimal("0.92"), "GBP": Decimal("1.17")},
)
CAMPAIGNS = [f"campaign_{i}" for i in range(40)]
MEDIUMS = [None, None, None, "cpc", "email", "social", "organic", "referral"]
PAGES = [f"/p/{i}" for i in range(80)]


class Stream:
    """A generator of raw events of every kind with event time advancing at ``rate``/s."""

    def __init__(self, rate: float) -> None:
        """Seed everything with random.Random(1)."""
        self.rng = random.Random(1)
        self.rate = rate
        self.clock = START_S
        self.n = 0
        self.recent: list[tuple[Kind, bytes]] = []

    def ts(self) -> float:
        """Return the next event time: mostly in order, some seconds of disorder."""
        self.clock += self.rng.expovariate(self.rate)
        roll = self.rng.random()
        if roll < 0.005:
            return self.clock - self.rng.uniform(400, 900)  # late (lateness is 300 s)
        if roll < 0.05:
            return self.clock - self.rng.uniform(0, 120)
        return self.clock - self.rng.uniform(0, 2)

    def base(self) -> dict[str, Any]:
        """Return event_id and ts."""
        self.n += 1
        return {"event_id": f"{self.rng.getrandbits(64):016x}-{self.n}", "ts": self.ts()}

    def pageview(self) -> dict[str, Any]:
        """Return a page view, engagement or key event of a returning or new visitor."""
        rng = self.rng
        visitor = int(rng.paretovariate(1.2) * 1000) % 200_000
        event = self.base() | {"visitor_id": f"v{visitor}", "page": rng.choice(PAGES)}
        if visitor % 2:
            event["session_id"] = f"s{visitor}-{int(self.clock // 1800)}"
        medium = rng.choice(MEDIUMS)
        if medium:
            event |= {"utm_medium": medium, "campaign": rng.choice(CAMPAIGNS)}
        roll = rng.random()
        if roll < 0.15:
            event |= {"type": "engagement", "engaged_ms": rng.randrange(20_000)}
        elif roll < 0.18:
            event |= {"type": "key_event", "name": rng.choice(["signup", "purchase", "video"])}
        return event

    def email(self) -> dict[str, Any]:
        """Return an e-mail event of a campaign and recipient."""
        rng = self.rng
        kind = rng.choices(
            ["sent", "delivered", "bounced", "opened", "clicked", "unsubscribed"],
            [30, 28, 2, 25, 12, 1],
        )[0]
        event = self.base() | {
            "campaign": rng.choice(CAMPAIGNS[:10]),
            "recipient_id": f"r{rng.randrange(50_000)}",
            "type": kind,
        }
        if kind == "opened":
            event["machine_open"] = rng.random() < 0.4
        return event

    def order(self) -> dict[str, Any]:
        """Return a cart, checkout, purchase or refund of a customer."""
        rng = self.rng
        customer = f"c{rng.randrange(5_000)}"
        kind = rng.choices(
            ["cart_created", "checkout_started", "purchase", "refund"], [5, 3, 3, 1]
        )[0]
        event = self.base() | {"customer_id": customer, "type": kind}
        if rng.random() < 0.7:
            event["cart_id"] = f"{customer}-k{rng.randrange(3)}"
        if kind in ("purchase", "refund"):
            event |= {
                "amount": f"{rng.uniform(5, 300):.2f}",
                "currency": rng.choice(["EUR", "USD"]),
            }
        if rng.random() < 0.5:
            event |= {"campaign": rng.choice(CAMPAIGNS), "channel": "paid"}
        return event

    def adspend(self) -> dict[str, Any]:
        """Return a cost of a campaign."""
        rng = self.rng
        return self.base() | {
            "campaign": rng.choice(CAMPAIGNS),
            "channel": rng.choice(["paid", "social"]),
            "cost": f"{rng.uniform(1, 50):.2f}",
            "currency": "EUR",
        }

    def survey(self) -> dict[str, Any]:
        """Return an NPS answer."""
        rng = self.rng
        return self.base() | {
            "respondent_id": f"n{rng.randrange(10_000)}",
            "score": rng.randrange(11),
            "campaign": rng.choice(CAMPAIGNS),
        }

    def next(self, mix: list[tuple[Kind, float]]) -> tuple[Kind, bytes]:
        """Return the next raw record: 1% are re-sent copies of a recent one."""
        rng = self.rng
        if self.recent and rng.random() < 0.01:
            return rng.choice(self.recent)
        kind = rng.choices([k for k, _ in mix], [w for _, w in mix])[0]
        make: Callable[[], dict[str, Any]] = {
            Kind.pageviews: self.pageview,
            Kind.emails: self.email,
            Kind.orders: self.order,
            Kind.adspend: self.adspend,
            Kind.surveys: self.survey,
        }[kind]
        record = (kind, orjson.dumps(make()))
        self.recent.append(record)
        if len(self.recent) > 1000:
            del self.recent[:500]
        return record


def events(n: int, rate: float, mix: list[tuple[Kind, float]]) -> list[tuple[Kind, Event]]:
    """Return ``n`` parsed events."""
    stream = Stream(rate)
    now = START_S + n / rate + 3600
    out: list[tuple[Kind, Event]] = []
    while len(out) < n:
        kind, raw = stream.next(mix)
        event = parse(kind, raw, CTX, now)
        if isinstance(event, Rejection):
            raise AssertionError(event)
        out.append((kind, event))
    return out


def run(
    stream: list[tuple[Kind, Event]], rate: float, checkpoints: bool
) -> tuple[float, PartitionEngine, int]:
    """Process ``stream`` once; return the seconds taken, the engine and entries written."""
    engine = PartitionEngine(0, EngineConfig())
    offsets = dict.fromkeys(Kind, 0)
    process = engine.process
    every = int(rate)  # one checkpoint per second of event time
    entries = 0
    gc.collect()
    started = time.perf_counter()
    if checkpoints:
        for i, (kind, event) in enumerate(stream):
            offset = offsets[kind]
            offsets[kind] = offset + 1
            process(kind, event, offset)
            if i % every == every - 1:
                entries += len(engine.take_dirty())
                if i % (15 * every) == 15 * every - 1:
                    for _ in engine.window_values(event.ts_s):
                        pass
    else:
        for kind, event in stream:
            offset = offsets[kind]
            offsets[kind] = offset + 1
            process(kind, event, offset)
    return time.perf_counter() - started, engine, entries


def throughput(args: argparse.Namespace) -> None:
    """Print events/s for pageviews alone and for the mix, with and without checkpoints."""
    mixes = {
        "pageviews": [(Kind.pageviews, 1.0)],
        "mix": [
            (Kind.pageviews, 0.70),
            (Kind.emails, 0.15),
            (Kind.orders, 0.08),
            (Kind.adspend, 0.03),
            (Kind.surveys, 0.04),
        ],
    }
    print(f"{args.n:,} events, event time at {args.rate:,.0f}/s, best of {args.repeat}")
    print(f"{'stream':<10} {'process':>12} {'+ checkpoints':>14} {'us/event':>9} entries/s")
    for name, mix in mixes.items():
        stream = events(args.n, args.rate, mix)
        best = min(run(stream, args.rate, False)[0] for _ in range(args.repeat))
        timed = [run(stream, args.rate, True) for _ in range(args.repeat)]
        with_cp, engine, entries = min(timed, key=lambda item: item[0])
        seconds_of_events = args.n / args.rate
        print(
            f"{name:<10} {args.n / best:>12,.0f} {args.n / with_cp:>14,.0f}"
            f" {best / args.n * 1e6:>9.2f} {entries / seconds_of_events:,.0f}"
        )
        state = engine.debug_state()
        print(
            f"{'':<10} state at the end: {len(engine._store):,} cells,"
            f" {len(engine._sessions.seen):,} visitors, {len(engine._sessions.sessions):,}"
            f" sessions, {sum(len(t.dedup) for t in engine._topics.values()):,} ids,"
            f" {len(state):,} entries"
        )


def rss_mib() -> float:
    """Return the resident set size of this process in MiB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * 4096 / 2**20


def memory(args: argparse.Namespace) -> None:
    """Fill 24 h x 1-minute buckets for 1,000 campaign x channel keys; report memory."""
    channels = ["organic", "paid", "referral", "direct", "email", "social", "other"]
    keys = [(f"campaign_{i:03d}", ch) for i in range(143) for ch in channels][:1000]
    config = EngineConfig(max_campaigns=200)
    rss_before = rss_mib()
    if args.tracemalloc:
        tracemalloc.start()
    engine = PartitionEngine(0, config)
    offset = 0
    minutes = 24 * 60
    log: dict[bytes, bytes | None] = {}  # the compacted state topic
    # One visitor per key, a new session (session_id) every minute: every key's cell gets
    # pageviews, sessions, bounced_sessions every minute; each minute a page's landing cell.
    fill_s = 0.0
    for minute in range(minutes):
        base = START_S + minute * 60
        batch = [
            _pageview(offset + i, base + i * 0.05, f"v{i}", f"m{minute}", campaign, channel)
            for i, (campaign, channel) in enumerate(keys)
        ]
        started = time.perf_counter()
        for event in batch:
            engine.process(Kind.pageviews, event, offset)
            offset += 1
        entries = engine.take_dirty()
        fill_s += time.perf_counter() - started
        if args.restore:
            # Copied: a kept orjson output pins ~4 KiB of malloc'd buffer (not the engine's).
            log.update(
                (key, None if value is None else bytes(memoryview(value))) for key, value in entries
            )
    reference = START_S + minutes * 60 - 1
    started = time.perf_counter()
    for _ in engine.window_values(reference):
        pass
    rebuild_s = time.perf_counter() - started
    started = time.perf_counter()
    for _ in engine.window_values(reference + 15):
        pass
    scrape_s = time.perf_counter() - started
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] / 2**20 if args.tracemalloc else float("nan")
    if args.tracemalloc:
        tracemalloc.stop()
    rss_after = rss_mib()
    ids = sum(len(topic.dedup) for topic in engine._topics.values())
    print(f"{offset:,} pageviews over 24 h, 1,000 keys: {len(engine._store):,} cells")
    print(
        f"engine (tracemalloc): {held:,.0f} MiB; RSS {rss_before:,.0f} -> {rss_after:,.0f} MiB"
        f" (+{rss_after - rss_before:,.0f}); dedup ids {ids:,}"
    )
    print(
        f"fill {offset / fill_s:,.0f} events/s (with take_dirty each minute);"
        f" first window_values (rebuild) {rebuild_s:.2f} s, next scrape {scrape_s * 1000:.1f} ms"
    )
    if log:
        live = [(key, value) for key, value in log.items() if value is not None]
        size = sum(len(key) + len(value) for key, value in live if value is not None)
        started = time.perf_counter()
        restored = PartitionEngine.restore(0, config, live)
        restore_s = time.perf_counter() - started
        assert len(restored._store) == len(engine._store)
        print(
            f"state topic after compaction: {len(live):,} entries, {size / 2**20:,.0f} MiB;"
            f" restore {restore_s:.1f} s"
        )


def _pageview(n: int, ts: float, visitor: str, session: str, campaign: str, channel: str) -> Event:
    event = parse(
        Kind.pageviews,
        orjson.dumps(
            {
                "event_id": f"e{n}",
                "ts": ts,
                "visitor_id": visitor,
                "session_id": session,
                "campaign": campaign,
                "channel": channel,
                "page": PAGES[n % 50],
            }
        ),
        CTX,
        ts,
    )
    assert not isinstance(event, Rejection)
    return event


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300_000)
    parser.add_argument("--rate", type=float, default=3_000.0, help="events per s of event time")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory", action="store_true", help="run the memory fill instead")
    parser.add_argument("--tracemalloc", action="store_true", help="with --memory: trace it")
    parser.add_argument(
        "--restore", action="store_true", help="with --memory: keep the entries, time a restore"
    )
    args = parser.parse_args()
    print(f"Python {platform.python_version()} on {platform.processor() or platform.machine()}")
    if args.memory:
        memory(args)
    else:
        throughput(args)


if __name__ == "__main__":
    main()
