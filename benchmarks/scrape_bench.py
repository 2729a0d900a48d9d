"""Scrape-cost benchmark: /metrics rendering with 1,000 campaign x channel keys x 3 windows.

    python benchmarks/scrape_bench.py [--keys 1000] [--hours 24] [--scrapes 200]

Fills one engine per partition with pageviews for every key every minute over the last
``--hours`` (sessions, bounces, landing pages follow), registers the same collectors the
worker serves, and times the body of ``GET /metrics`` (the collector's own renderer, and
prometheus_client's ``generate_latest`` for comparison) while new
events keep arriving between scrapes (so the incremental window sums do real work).
Prints p50/p90/p99/max; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest

from streamkpi.config import Settings
from streamkpi.events import Kind, PageviewEvent
from streamkpi.exporter.kpis import KpiCollector, WindowValue
from streamkpi.kpis.config import EngineConfig
from streamkpi.kpis.engine import PartitionEngine

CHANNELS = ["organic", "paid", "referral", "direct", "email", "social", "other"]


class Engines:
    """The part of the pipeline the collector reads."""

    def __init__(self, engines: dict[int, PartitionEngine]) -> None:
        self.engines = engines

    def window_values(self, reference_s: float) -> Iterator[WindowValue]:
        for engine in self.engines.values():
            yield from engine.window_values(reference_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()

    settings = Settings(labels={"max_campaigns": args.keys, "max_pages": 50})
    config = EngineConfig.from_settings(settings)
    engines = {p: PartitionEngine(p, config) for p in range(args.partitions)}
    keys = [(f"c{i // len(CHANNELS):04d}", CHANNELS[i % len(CHANNELS)]) for i in range(args.keys)]
    now = time.time()
    start = now - args.hours * 3600
    offsets = dict.fromkeys(engines, 0)
    n = 0

    def feed(ts: float) -> None:
        nonlocal n
        for campaign, channel in keys:
            n += 1
            p = n % args.partitions
            event = PageviewEvent.model_validate(
                {
                    "event_id": f"e{n}",
                    "ts": ts,
                    "visitor_id": f"v{n}",
                    "campaign": campaign,
                    "channel": channel,
                    "page": f"/p{n % 40}",
                }
            )
            engines[p].process(Kind.pageviews, event, offsets[p])
            offsets[p] += 1

    t0 = time.monotonic()
    for minute in range(args.hours * 60):
        feed(start + minute * 60)
    print(f"filled {n:,} events in {time.monotonic() - t0:.1f}s")

    registry = CollectorRegistry()
    collector = KpiCollector(Engines(engines))
    registry.register(collector)
    first = time.perf_counter()
    body = generate_latest(registry)
    first = time.perf_counter() - first
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))

    def time_scrapes(render: Callable[[], bytes]) -> list[float]:
        timings = []
        for i in range(args.scrapes):
            if i % 10 == 0:
                feed(now - 30)  # a minute of traffic lands between some scrapes
            t = time.perf_counter()
            render()
            timings.append((time.perf_counter() - t) * 1000)
        return sorted(timings)

    fast = time_scrapes(collector.render)
    slow = time_scrapes(lambda: generate_latest(registry))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}"
    )
    print(f"series per scrape: {series:,}; body {len(body) / 1024:.0f} KiB")
    print(f"first scrape after start/restore: {first * 1000:.0f} ms")
    for name, timings in (("streamkpi render (served)", fast), ("prometheus_client", slow)):
        q = statistics.quantiles(timings, n=100)
        print(
            f"{name}: ms over {args.scrapes} scrapes: p50 {q[49]:.1f}  p90 {q[89]:.1f}  "
            f"p99 {q[98]:.1f}  max {timings[-1]:.1f}"
        )


if __name__ == "__main__":
    main()
