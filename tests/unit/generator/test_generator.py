"""The synthetic stream: deterministic, large, and carrying every fault the engine must handle."""

from __future__ import annotations

import dataclasses
import json
import time
import zlib
from decimal import Decimal
from functools import cache
from typing import Any

import pytest

from streamkpi.events import Kind, ParseContext, Rejection, parse
from streamkpi.generator import (
    CURRENCY_RATES,
    GenConfig,
    Record,
    Truth,
    TruthParams,
    generate,
    ground_truth,
)
from streamkpi.generator.incidents import Incident, IncidentKind
from streamkpi.generator.stream import ENTITY_FIELD

SMALL = GenConfig(
    seed=7, visitors=800, recipients=400, customers=300, respondents=100, duration_s=3 * 3600
)
CTX = ParseContext(rates=CURRENCY_RATES)


def _payload(record: Record) -> dict[str, Any] | None:
    """Return the JSON object of a record, or None for the broken ones."""
    try:
        payload = json.loads(record.value)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def params_for(config: GenConfig) -> TruthParams:
    end_s = config.start_s + config.duration_s
    return TruthParams(now_s=end_s, final_watermark_s=end_s + 3600, rates=CURRENCY_RATES)


@cache
def default_stream() -> tuple[list[Record], Truth, float]:
    """Return the default config's records, their truth and the seconds both took."""
    started = time.perf_counter()
    config = GenConfig.for_test()
    assert config == GenConfig()
    records = generate(config)
    truth = ground_truth(records, params_for(config))
    return records, truth, time.perf_counter() - started


def test_same_seed_gives_the_same_bytes() -> None:
    assert generate(SMALL) == generate(dataclasses.replace(SMALL))


def test_another_seed_gives_another_stream() -> None:
    other = dataclasses.replace(SMALL, seed=8)
    assert [r.value for r in generate(SMALL)] != [r.value for r in generate(other)]


def test_the_default_config_makes_100k_records_quickly() -> None:
    records, _, seconds = default_stream()
    assert len(records) >= 100_000
    # Generous: about 2 s on the project's machine; this catches an accidental O(n^2).
    assert seconds < 30


def test_every_record_goes_to_the_partition_of_its_key() -> None:
    records, _, _ = default_stream()
    partitions = GenConfig().partitions
    assert all(r.partition == zlib.crc32(r.key) % partitions for r in records)
    assert {r.partition for r in records} == set(range(partitions))


def test_valid_records_are_keyed_by_their_entity() -> None:
    for record in generate(SMALL):
        event = parse(record.kind, record.value, CTX, now_s=SMALL.start_s + SMALL.duration_s)
        if not isinstance(event, Rejection):
            assert record.key.decode() == getattr(event, ENTITY_FIELD[record.kind])


def test_the_mix_has_every_kind_and_every_outcome() -> None:
    _, truth, _ = default_stream()
    for kind in Kind:
        assert truth.outcomes[kind, "accepted"] > 0
        for outcome in ("invalid", "duplicate", "late"):
            assert truth.outcomes[kind, outcome] > 0, (kind, outcome)
    total = sum(truth.outcomes.values())
    assert 0.01 < sum(n for (_, o), n in truth.outcomes.items() if o == "duplicate") / total < 0.03
    assert 0.003 < sum(n for (_, o), n in truth.outcomes.items() if o == "late") / total < 0.008
    assert 0.007 < sum(n for (_, o), n in truth.outcomes.items() if o == "invalid") / total < 0.015


def test_the_invalid_records_cover_many_reasons() -> None:
    _, truth, _ = default_stream()
    reasons = {reason for _, reason in truth.invalid_reasons}
    assert reasons >= {
        "invalid_json",
        "not_an_object",
        "missing_field",
        "bad_type",
        "bad_value",
        "bad_ts",
        "future_ts",
        "too_large",
        "unknown_currency",
        "bad_score",
        "bad_channel",
    }


def test_duplicates_come_right_away_and_later() -> None:
    records, _, _ = default_stream()
    first_seen: dict[bytes, int] = {}
    distances = []
    for position, record in enumerate(records):
        if record.value in first_seen:
            distances.append(position - first_seen[record.value])
        else:
            first_seen[record.value] = position
    assert min(distances) == 1
    assert max(distances) >= 50


def test_events_arrive_out_of_order_within_the_disorder_bound() -> None:
    records, _, _ = default_stream()
    config = GenConfig()
    max_ts: dict[tuple[Kind, int], float] = {}
    behind = 0
    for record in records:
        event = parse(record.kind, record.value, CTX, now_s=config.start_s + config.duration_s)
        if isinstance(event, Rejection):
            continue
        where = (record.kind, record.partition)
        if event.ts_s < max_ts.get(where, event.ts_s):
            behind += 1
        max_ts[where] = max(max_ts.get(where, event.ts_s), event.ts_s)
    assert behind > len(records) // 10


def test_the_stream_spans_campaigns_channels_currencies_and_time_formats() -> None:
    records, truth, _ = default_stream()
    campaigns = {labels[0] for (_, _, labels) in truth.buckets if len(labels) == 2}
    channels = {labels[1] for (_, _, labels) in truth.buckets if len(labels) == 2}
    assert campaigns >= {"spring_sale", "black_friday", "c07", "c08", "c09", "none"}
    assert channels >= {"organic", "paid", "referral", "direct", "email", "social", "other", "none"}
    payloads = [(r.kind, p) for r in records[:5000] if (p := _payload(r)) is not None]
    assert {p.get("currency") for k, p in payloads if k is Kind.orders} >= {"EUR", "USD", "GBP"}
    stamps = [p.get("ts") for _, p in payloads]
    assert {type(ts) for ts in stamps} >= {str, int, float}
    assert any(isinstance(ts, str) and ts.endswith("Z") for ts in stamps)
    assert any(isinstance(ts, str) and ts.endswith(("+01:00", "-05:00", "+05:30")) for ts in stamps)


def test_the_stream_exercises_every_component() -> None:
    _, truth, _ = default_stream()
    for name in (
        "pageviews",
        "sessions",
        "new_visitors",
        "leads",
        "converted_sessions",
        "bounced_sessions",
        "purchases",
        "returning_purchases",
        "customer_activations",
        "nps_promoters",
        "nps_detractors",
        "email_unique_opens",
        "email_machine_opens",
        "email_unique_clicks",
        "email_unsubscribes",
        "email_complaints",
        "emails_bounced",
        "refunds",
        "carts_created",
        "carts_abandoned",
        "ad_spend",
    ):
        assert truth.total(name) > 0, name
    # Some sessions join by session_id, some visitors come back after the gap.
    assert truth.total("sessions") > truth.total("new_visitors")
    assert isinstance(truth.total("revenue"), Decimal)


@pytest.mark.parametrize(
    "faults",
    [
        {"duplicate_rate": 0.05},  # why: a retry is a duplicate and counts nothing
        {"late_rate": 0.02},  # why: a late event counts nothing
        {"invalid_rate": 0.05},  # why: an invalid one neither
    ],
)
def test_faults_change_the_outcomes_but_no_count(faults: dict[str, Any]) -> None:
    clean_config = dataclasses.replace(SMALL, duplicate_rate=0, late_rate=0, invalid_rate=0)
    clean = ground_truth(generate(clean_config), params_for(clean_config))
    faulty_config = dataclasses.replace(clean_config, **faults)
    faulty = ground_truth(generate(faulty_config), params_for(faulty_config))
    assert {o for (_, o), n in clean.outcomes.items() if n} == {"accepted"}
    assert faulty.outcomes != clean.outcomes
    assert faulty.buckets == clean.buckets
    assert faulty.active_customers == clean.active_customers


@pytest.mark.parametrize(
    "changes",
    [
        {"disorder_s": 300.0},  # why: reordered events could then be late
        {"duplicate_rate": 1.0},
        {"partitions": 0},
        {"visitors": -1},
        {"web_campaigns": 0},
        {"duration_s": 0.0},
    ],
)
def test_a_config_that_would_not_mean_what_it_says_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(changes))):
        dataclasses.replace(GenConfig(), **changes)


def _email_counts(records: list[Record]) -> dict[tuple[str, str], int]:
    """Count unique valid e-mail events by (campaign, type), straight from the records."""
    seen: set[str] = set()
    counts: dict[tuple[str, str], int] = {}
    for record in records:
        payload = _payload(record)
        if record.kind is not Kind.emails or payload is None:
            continue
        event_id = payload.get("event_id")
        if not isinstance(event_id, str) or event_id in seen:
            continue
        seen.add(event_id)
        key = (str(payload.get("campaign")), str(payload.get("type")))
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_a_deliverability_drop_turns_its_campaigns_deliveries_into_bounces() -> None:
    drop = Incident(IncidentKind.deliverability_drop, campaign="c07", severity=0.6)
    # No late or invalid extras: which events get one follows the random sequence, which
    # the dropped events shift.
    clean = dataclasses.replace(SMALL, late_rate=0, invalid_rate=0)
    healthy = _email_counts(generate(clean))
    hit = _email_counts(generate(dataclasses.replace(clean, incidents=(drop,))))
    for campaign in ("c07", "c08", "c09"):
        assert hit[campaign, "sent"] == healthy[campaign, "sent"] > 100
    # Untouched campaigns: the same events, to the count.
    for (campaign, kind), n in healthy.items():
        if campaign != "c07":
            assert hit.get((campaign, kind)) == n, (campaign, kind)
    before = healthy["c07", "delivered"] / healthy["c07", "sent"]
    after = hit["c07", "delivered"] / hit["c07", "sent"]
    assert after == pytest.approx(before * 0.4, abs=0.08)
    assert hit["c07", "bounced"] > healthy["c07", "bounced"]
    assert hit.get(("c07", "opened"), 0) < healthy["c07", "opened"] * 0.6


def test_the_batch_stream_refuses_a_conversion_drop() -> None:
    with pytest.raises(ValueError, match="conversion-drop"):
        GenConfig(incidents=(Incident(IncidentKind.conversion_drop),))
