"""Entries and restore: an engine rebuilt from its entries behaves exactly like the original.

The property test drives engine A with a seeded random stream of all five kinds (with
disorder, late events, duplicates, invalid records and idle watermark advances), taking
dirty entries at random points. Engine B is restored from the entries up to a
checkpoint and fed the records after it (offsets below its next_offset skipped, as the
wiring does); at the end A and B must agree on everything.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from _engine_helpers import (
    KIND_OF,
    T0,
    adspend,
    config,
    email,
    order,
    pageview,
    survey,
)

from streamkpi.events import Event, Kind
from streamkpi.kpis.codec import IncompatibleState
from streamkpi.kpis.engine import EngineConfig, PartitionEngine

CONFIG = config(
    bucket_s=10,
    window_s={"30s": 30, "2m": 120},
    allowed_lateness_s=20,
    dedup_horizon_s=60,
    session_gap_s=90,
    visitor_memory_s=300,
    email_memory_s=300,
    customer_memory_s=500,
    churn_after_s=200,
    abandon_after_s=60,
    max_campaigns=3,
    max_pages=2,
    campaign_allowlist=frozenset({"brand"}),
)
CAMPAIGNS = ["a", "b", "c", "d", "e", "brand", None]


@dataclass(frozen=True)
class Step:
    """One call on the engine: a record (event or invalid) or an idle watermark advance."""

    kind: Kind
    event: Event | None = None  # None: an invalid record (dead-lettered)
    advance_to: float | None = None


def random_stream(seed: int, n: int) -> list[Step]:
    """Return ``n`` steps of a seeded random stream over all five kinds."""
    rng = random.Random(seed)
    clock = T0
    steps: list[Step] = []
    sent: list[Step] = []
    for i in range(n):
        clock += rng.expovariate(1 / 2.5)
        roll = rng.random()
        if roll < 0.05 and sent:
            steps.append(rng.choice(sent[-50:]))  # a duplicate (or late by now)
            continue
        if roll < 0.08:
            kind = rng.choice(list(Kind))
            steps.append(Step(kind, advance_to=clock - 20 + rng.uniform(0, 60)))
            continue
        if roll < 0.10:
            steps.append(Step(rng.choice(list(Kind))))  # invalid record
            continue
        ts = clock - (rng.uniform(0, 200) if rng.random() < 0.05 else rng.uniform(0, 25))
        event = random_event(rng, ts, f"{seed}-{i}")
        step = Step(KIND_OF[type(event)], event)
        steps.append(step)
        sent.append(step)
    return steps


def random_event(rng: random.Random, ts: float, event_id: str) -> Event:
    """Return a random event of a random kind at ``ts``."""
    campaign = rng.choice(CAMPAIGNS)
    common = {"event_id": event_id}
    roll = rng.random()
    if roll < 0.5:
        fields: dict[str, Any] = {"campaign": campaign, "page": rng.choice(["/", "/a", "/b"])}
        if rng.random() < 0.4:
            fields["session_id"] = f"s{rng.randrange(3)}"
        if rng.random() < 0.5:
            fields["utm_medium"] = rng.choice(["cpc", "email", "social"])
        kind = rng.choices(["page_view", "engagement", "key_event"], [6, 3, 1])[0]
        if kind == "engagement":
            fields |= {"type": kind, "engaged_ms": rng.randrange(8000)}
        elif kind == "key_event":
            fields |= {"type": kind, "name": rng.choice(["signup", "video"])}
        return pageview(ts, f"v{rng.randrange(15)}", **common, **fields)
    if roll < 0.7:
        type_ = rng.choice(
            ["sent", "delivered", "bounced", "opened", "clicked", "unsubscribed", "complained"]
        )
        return email(
            ts,
            f"r{rng.randrange(8)}",
            type_,
            campaign=rng.choice(["a", "b", "x", "y"]),
            machine_open=rng.random() < 0.3,
            **common,
        )
    if roll < 0.9:
        type_ = rng.choices(
            ["cart_created", "checkout_started", "purchase", "refund"], [4, 1, 3, 1]
        )[0]
        fields = {"campaign": campaign}
        if rng.random() < 0.5:
            fields["channel"] = rng.choice(["paid", "email"])
        if rng.random() < 0.7:
            fields["cart_id"] = f"k{rng.randrange(3)}"
        if type_ in ("purchase", "refund"):
            fields["amount"] = f"{rng.randrange(1, 10_000) / 100:.2f}"
        return order(ts, f"c{rng.randrange(6)}", type_, **common, **fields)
    if roll < 0.95:
        cost = f"{rng.random():.3f}"
        return adspend(ts, campaign or "a", rng.choice(["paid", "social"]), cost, **common)
    return survey(ts, f"n{rng.randrange(5)}", rng.randrange(11), campaign=campaign, **common)


def run_step(engine: PartitionEngine, step: Step, offsets: dict[Kind, int]) -> str | None:
    """Apply ``step``; records get the next offset of their kind."""
    if step.advance_to is not None:
        engine.advance_watermark(step.kind, step.advance_to)
        return None
    offset = offsets[step.kind]
    offsets[step.kind] = offset + 1
    if offset < engine.next_offset(step.kind):
        return "skipped"  # already in the restored state
    if step.event is None:
        engine.record_offset(step.kind, offset)
        return "invalid"
    return engine.process(step.kind, step.event, offset).value


def observe(engine: PartitionEngine, reference_s: float) -> dict[str, Any]:
    """Return everything an engine shows, at ``reference_s``."""
    return {
        "state": engine.debug_state(),
        "buckets": sorted(engine.bucket_values()),
        "windows": sorted(engine.window_values(reference_s)),
        "windows_before": sorted(engine.window_values(reference_s - 35)),
        "active": engine.active_customers(),
        "watermarks": {kind: engine.watermark(kind) for kind in Kind},
        "offsets": {kind: engine.next_offset(kind) for kind in Kind},
    }


@dataclass
class Run:
    """Engine A's run: outcomes, entry batches and the state at each checkpoint."""

    steps: list[Step]
    outcomes: list[str | None]
    batches: list[tuple[int, list[tuple[bytes, bytes | None]]]]  # (steps done, entries)
    states: list[dict[str, Any]]
    engine: PartitionEngine


def run_a(seed: int, n: int) -> Run:
    """Drive engine A over a random stream, checkpointing at random points."""
    rng = random.Random(seed * 1000)
    steps = random_stream(seed, n)
    engine = PartitionEngine(0, CONFIG)
    offsets = dict.fromkeys(Kind, 0)
    outcomes: list[str | None] = []
    batches: list[tuple[int, list[tuple[bytes, bytes | None]]]] = []
    states: list[dict[str, Any]] = []
    for i, step in enumerate(steps):
        outcomes.append(run_step(engine, step, offsets))
        if rng.random() < 0.03:
            engine.window_values(T0 + i * 2.5)  # scrapes move the running sums
        if rng.random() < 0.02 or i == n - 1:
            batches.append((i + 1, engine.take_dirty()))
            states.append(engine.debug_state())
    return Run(steps, outcomes, batches, states, engine)


def replay(
    run: Run, checkpoint: int
) -> tuple[PartitionEngine, list[str | None], list[tuple[bytes, bytes | None]]]:
    """Restore B from batches[:checkpoint + 1] and feed it the steps after that checkpoint.

    B takes its own entries at other random points; return B, its outcomes and the
    entries written before (A's) and by B.
    """
    entries = [entry for _, batch in run.batches[: checkpoint + 1] for entry in batch]
    engine = PartitionEngine.restore(0, CONFIG, entries)
    done = run.batches[checkpoint][0]
    offsets = dict.fromkeys(Kind, 0)
    for step in run.steps[:done]:  # the offsets the records before the checkpoint had
        if step.advance_to is None:
            offsets[step.kind] += 1
    assert offsets == {kind: engine.next_offset(kind) for kind in Kind}
    rng = random.Random(checkpoint)
    outcomes: list[str | None] = []
    for step in run.steps[done:]:
        outcomes.append(run_step(engine, step, offsets))
        if rng.random() < 0.05:
            entries += engine.take_dirty()
    return engine, outcomes, entries + engine.take_dirty()


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_engine_restored_at_any_checkpoint_ends_exactly_like_the_original(seed: int) -> None:
    run = run_a(seed, 1500)
    assert len(run.batches) > 5
    assert {"accepted", "duplicate", "late", "invalid"} <= set(run.outcomes)
    end = T0 + 1500 * 2.5
    expected = observe(run.engine, end)
    rng = random.Random(seed)
    for checkpoint in sorted(rng.sample(range(len(run.batches) - 1), 4)):
        restored, replayed, entries = replay(run, checkpoint)
        assert replayed == run.outcomes[run.batches[checkpoint][0] :], checkpoint
        assert observe(restored, end) == expected, checkpoint
        # B's own entries continue A's: restoring from them gives B (and A) again.
        again = PartitionEngine.restore(0, CONFIG, entries)
        assert observe(again, end) == expected, checkpoint


@pytest.mark.parametrize("seed", [7, 8])
def test_restored_engine_equals_the_original_at_its_checkpoint(seed: int) -> None:
    run = run_a(seed, 800)
    for checkpoint in range(len(run.batches)):
        entries = [e for _, batch in run.batches[: checkpoint + 1] for e in batch]
        restored = PartitionEngine.restore(0, CONFIG, entries)
        assert restored.debug_state() == run.states[checkpoint]
        assert restored.take_dirty() == []  # nothing changed since


@pytest.mark.parametrize("seed", [9, 10])
def test_missing_last_batch_restores_the_earlier_checkpoint_and_replay_converges(
    seed: int,
) -> None:
    """A crash after take_dirty but before its batch was written loses only that batch."""
    run = run_a(seed, 1000)
    lost = len(run.batches) // 2  # batch never written: restore from the ones before it
    restored, _, entries = replay(run, lost - 1)
    assert restored.debug_state() == run.engine.debug_state()
    # B's own entries from there on, on top of what was written, describe B exactly.
    assert PartitionEngine.restore(0, CONFIG, entries).debug_state() == restored.debug_state()


def test_union_of_all_entries_restores_the_final_state() -> None:
    run = run_a(11, 1000)
    entries = [e for _, batch in run.batches for e in batch]
    assert PartitionEngine.restore(0, CONFIG, entries).debug_state() == run.engine.debug_state()


def test_take_dirty_is_empty_when_nothing_changed_and_keys_are_unique() -> None:
    run = run_a(12, 500)
    for _, batch in run.batches:
        keys = [key for key, _ in batch]
        assert len(keys) == len(set(keys))
    assert run.engine.take_dirty() == []


def test_entries_do_not_depend_on_hash_seed_or_object_ids() -> None:
    """Two engines fed the same calls produce the same entries, in the same order."""
    first = run_a(13, 600)
    second = run_a(13, 600)
    assert first.batches == second.batches


def test_tombstones_in_the_log_delete_keys() -> None:
    engine = PartitionEngine(0, CONFIG)
    engine.process(Kind.surveys, survey(T0, "n", 9), 0)
    entries = engine.take_dirty()
    key = next(key for key, _ in entries if key.startswith(b"b|"))
    restored = PartitionEngine.restore(0, CONFIG, [*entries, (key, None)])
    assert list(restored.bucket_values()) == []
    assert restored.next_offset(Kind.surveys) == 1


def test_money_survives_restore_exactly() -> None:
    engine = PartitionEngine(0, CONFIG)
    engine.process(Kind.orders, order(T0, "c", amount="0.10"), 0)
    engine.process(Kind.orders, order(T0, "d", amount="0.20"), 1)
    restored = PartitionEngine.restore(0, CONFIG, engine.take_dirty())
    restored.process(Kind.orders, order(T0, "e", amount="0.30"), 2)
    revenue = [v for name, _, _, v in restored.bucket_values() if name == "revenue"]
    assert revenue == [Decimal("0.60")]


@pytest.mark.parametrize(
    "other",
    [
        EngineConfig(bucket_s=30, window_s={"5m": 300}),  # why: cells of another size
    ],
)
def test_entries_of_another_bucket_size_are_refused(other: EngineConfig) -> None:
    engine = PartitionEngine(0, CONFIG)
    engine.process(Kind.surveys, survey(T0, "n", 9), 0)
    with pytest.raises(IncompatibleState):
        PartitionEngine.restore(0, other, engine.take_dirty())


def test_unknown_entries_are_refused() -> None:
    with pytest.raises(IncompatibleState):
        PartitionEngine.restore(0, CONFIG, [(b"z|what", b"1")])


def test_take_dirty_returns_only_what_one_event_changed() -> None:
    engine = PartitionEngine(0, CONFIG)
    for i in range(2000):
        engine.process(Kind.pageviews, pageview(T0 + i / 100, f"v{i}", event_id=f"p{i}"), i)
    assert len(engine.take_dirty()) > 2000
    engine.process(Kind.pageviews, pageview(T0 + 20, "v7", event_id="one more"), 2000)
    keys = [key for key, _ in engine.take_dirty()]
    assert keys == [
        b"w|pageviews",
        b'b|["pv",1764158420,"none","direct"]',  # its page view and the engagement it makes
        b'b|["lp",1764158420,"none"]',  # the engagement, by landing page
        b"v|v7",
        b"d|pageviews|176415842|0",  # a new chunk of remembered ids
    ]
