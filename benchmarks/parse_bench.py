"""Measure streamkpi.events.parse on one core: events per second for each topic.

Usage: python benchmarks/parse_bench.py [--n N] [--distinct D] [--repeat R]

Each topic gets a few hundred distinct realistic messages, cycled N times; the best of R
runs is reported, since the minimum is the least disturbed by other processes.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pydantic
import pydantic_core

# Runnable from a plain checkout too, not only after `pip install -e .`.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamkpi.events import Kind, ParseContext, Rejection, parse

NOW_S = 1_767_225_600.0  # 2026-01-01T00:00:00Z
CTX = ParseContext(
    rates={"EUR": Decimal(1), "USD": Decimal("0.92"), "GBP": Decimal("1.17")},
    reporting_currency="EUR",
)
CAMPAIGNS = ["spring_sale", "black_friday", "newsletter_w12", "retargeting_q3", "brand"]
REFERRERS = [
    "",
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://l.facebook.com/",
    "https://t.co/",
    "https://news.example.org/article/42",
    "https://shop.example.com/products/12",  # internal navigation
]
UTM = [(None, None), (None, None), ("cpc", "google"), ("email", "newsletter"), ("social", "ig")]


def _ts(rng: random.Random) -> str | int:
    """Return a recent event time, half RFC 3339 strings and half epoch milliseconds."""
    t = NOW_S - rng.uniform(0, 3600)
    if rng.random() < 0.5:
        return round(t * 1000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
    return f"{stamp}.{int(t % 1 * 1000):03d}Z"


def _base(rng: random.Random, i: int) -> dict[str, Any]:
    return {"event_id": f"{rng.getrandbits(128):032x}-{i}", "ts": _ts(rng)}


def pageview(rng: random.Random, i: int) -> dict[str, Any]:
    """Return a page view (mostly), engagement or key event."""
    medium, source = rng.choice(UTM)
    event = _base(rng, i) | {
        "visitor_id": f"v-{rng.randrange(100_000)}",
        "session_id": f"s-{rng.randrange(1_000_000)}",
        "page": f"/products/{rng.randrange(500)}?ref=home",
        "referrer": rng.choice(REFERRERS),
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0",
    }
    if medium:
        event |= {"utm_medium": medium, "utm_source": source, "campaign": rng.choice(CAMPAIGNS)}
    roll = rng.random()
    if roll < 0.15:
        event |= {"type": "engagement", "engaged_ms": rng.randrange(60_000)}
    elif roll < 0.20:
        event |= {"type": "key_event", "name": "signup"}
    return event


def email(rng: random.Random, i: int) -> dict[str, Any]:
    """Return an e-mail lifecycle event."""
    kind = rng.choice(["sent", "delivered", "opened", "clicked", "bounced"])
    event = _base(rng, i) | {
        "campaign": rng.choice(CAMPAIGNS),
        "recipient_id": f"r-{rng.randrange(100_000)}",
        "type": kind,
        "machine_open": kind == "opened" and rng.random() < 0.4,
    }
    if kind == "bounced":
        event["bounce_kind"] = rng.choice(["hard", "soft"])
    return event


def order(rng: random.Random, i: int) -> dict[str, Any]:
    """Return a cart, checkout or purchase (with amount as string or number)."""
    kind = rng.choice(["cart_created", "checkout_started", "purchase", "purchase"])
    event = _base(rng, i) | {
        "customer_id": f"c-{rng.randrange(50_000)}",
        "type": kind,
        "cart_id": f"cart-{rng.randrange(1_000_000)}",
        "visitor_id": f"v-{rng.randrange(100_000)}",
        "campaign": rng.choice(CAMPAIGNS),
        "channel": rng.choice(["paid", "email", "organic"]),
    }
    if kind == "purchase":
        cents = rng.randrange(500, 50_000)
        amount: str | float = f"{cents / 100:.2f}" if rng.random() < 0.5 else cents / 100
        event |= {"order_id": f"o-{i}", "amount": amount, "currency": rng.choice(["EUR", "USD"])}
    return event


def adspend(rng: random.Random, i: int) -> dict[str, Any]:
    """Return an ad spend record."""
    return _base(rng, i) | {
        "campaign": rng.choice(CAMPAIGNS),
        "channel": rng.choice(["paid", "social"]),
        "cost": f"{rng.uniform(1, 500):.2f}",
        "currency": rng.choice(["EUR", "USD", "GBP"]),
    }


def survey(rng: random.Random, i: int) -> dict[str, Any]:
    """Return an NPS answer."""
    return _base(rng, i) | {
        "respondent_id": f"r-{rng.randrange(100_000)}",
        "score": rng.randrange(11),
        "campaign": rng.choice(CAMPAIGNS),
    }


def invalid(rng: random.Random, i: int) -> bytes:
    """Return an invalid pageview of one of the common kinds."""
    good = pageview(rng, i)
    broken: list[bytes] = [
        json.dumps({k: v for k, v in good.items() if k != "visitor_id"}).encode(),
        json.dumps(good | {"ts": "2026-01-01T00:00:00"}).encode(),
        json.dumps(good | {"ts": NOW_S + 86_400}).encode(),
        json.dumps(good | {"channel": "Paid Search"}).encode(),
        json.dumps(good)[:-7].encode(),
        b"[" + json.dumps(good).encode() + b"]",
    ]
    return broken[i % len(broken)]


GENERATORS: dict[Kind, Callable[[random.Random, int], dict[str, Any]]] = {
    Kind.pageviews: pageview,
    Kind.emails: email,
    Kind.orders: order,
    Kind.adspend: adspend,
    Kind.surveys: survey,
}


def run(kind: Kind, messages: list[bytes], n: int, repeat: int) -> tuple[float, float]:
    """Return (best events/s, share rejected) of parsing ``n`` cycled messages."""
    cycled = (messages * (n // len(messages) + 1))[:n]
    rejected = sum(isinstance(parse(kind, m, CTX, NOW_S), Rejection) for m in messages)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for raw in cycled:
            parse(kind, raw, CTX, NOW_S)
        best = min(best, time.perf_counter() - start)
    return n / best, rejected / len(messages)


def run_orjson(messages: list[bytes], n: int, repeat: int) -> float:
    """Return the best messages/s of orjson.loads alone: the floor of any JSON parsing."""
    cycled = (messages * (n // len(messages) + 1))[:n]
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for raw in cycled:
            orjson.loads(raw)
        best = min(best, time.perf_counter() - start)
    return n / best


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="events per topic and run")
    parser.add_argument("--distinct", type=int, default=500, help="distinct messages per topic")
    parser.add_argument("--repeat", type=int, default=3, help="runs per topic, best is kept")
    args = parser.parse_args()

    rng = random.Random(42)
    samples = {
        kind: [json.dumps(gen(rng, i)).encode() for i in range(args.distinct)]
        for kind, gen in GENERATORS.items()
    }
    bad = [invalid(rng, i) for i in range(args.distinct)]

    print(
        f"python {platform.python_version()}, pydantic {pydantic.VERSION}, "
        f"pydantic-core {pydantic_core.__version__}, orjson {orjson.__version__}"
    )
    print(f"cpu {cpu_model()}; one thread, best of {args.repeat} x {args.n} events per row\n")
    print(f"{'topic':<22}{'events/s':>12}{'us/event':>10}{'avg bytes':>11}{'rejected':>10}")
    rows = [(kind.value, kind, samples[kind]) for kind in Kind]
    rows.append(("pageviews (invalid)", Kind.pageviews, bad))
    for label, kind, messages in rows:
        rate, rejected = run(kind, messages, args.n, args.repeat)
        size = sum(map(len, messages)) / len(messages)
        print(f"{label:<22}{rate:>12,.0f}{1e6 / rate:>10.2f}{size:>11.0f}{rejected:>10.0%}")
    floor = run_orjson(samples[Kind.pageviews], args.n, args.repeat)
    print(f"{'(orjson.loads only)':<22}{floor:>12,.0f}{1e6 / floor:>10.2f}")


if __name__ == "__main__":
    main()
