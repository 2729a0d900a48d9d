"""The engine and the independent ground truth agree on a whole generated stream.

No Kafka here: records are fed to one PartitionEngine per partition in production order,
exactly as a worker would see them, with the final idle watermark advance. The
integration tests repeat this through a real broker, with crashes and two workers.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

from streamkpi.app import parse_context
from streamkpi.config import Settings
from streamkpi.events import Kind, Rejection, parse
from streamkpi.generator.stream import CURRENCY_RATES, GenConfig, generate
from streamkpi.generator.truth import TruthParams, ground_truth
from streamkpi.kpis.config import EngineConfig
from streamkpi.kpis.engine import PartitionEngine

PARTITIONS = 3


def settings() -> Settings:
    return Settings(
        topic_partitions=PARTITIONS,
        currency_rates=dict(CURRENCY_RATES),
        churn_after_s=3600,
        customer_memory_s=86_400,
        visitor_memory_s=86_400,
        email_memory_s=86_400,
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_engine_matches_ground_truth_on_a_generated_stream(seed: int) -> None:
    s = settings()
    config = GenConfig(
        seed=seed,
        partitions=PARTITIONS,
        visitors=3000,
        recipients=2000,
        customers=1000,
        respondents=500,
    )
    records = generate(config)
    end = config.start_s + config.duration_s
    now = end + 60  # the clock of the future-ts check, as in the truth
    final_wm = end + 2 * 3600  # past every timer of the span
    truth = ground_truth(
        records, TruthParams.from_settings(s, now_s=now, final_watermark_s=final_wm)
    )

    ctx = parse_context(s)
    engines = {p: PartitionEngine(p, EngineConfig.from_settings(s)) for p in range(PARTITIONS)}
    offsets: Counter[tuple[Kind, int]] = Counter()
    outcomes: Counter[tuple[str, str]] = Counter()
    for record in records:
        engine = engines[record.partition]
        offset = offsets[(record.kind, record.partition)]
        offsets[(record.kind, record.partition)] += 1
        result = parse(record.kind, record.value, ctx, now)
        if isinstance(result, Rejection):
            engine.record_offset(record.kind, offset)
            outcomes[(record.kind.value, "invalid")] += 1
            continue
        outcomes[(record.kind.value, engine.process(record.kind, result, offset).value)] += 1
    for engine in engines.values():
        for kind in Kind:
            engine.advance_watermark(kind, final_wm)

    assert {k: v for k, v in outcomes.items() if v} == {
        k: v for k, v in truth.outcomes.items() if v
    }
    got: dict[tuple[str, int, tuple[str, ...]], int | Decimal] = {}
    for engine in engines.values():
        for component, bucket, labels, value in engine.bucket_values():
            key = (component, bucket, labels)
            got[key] = got.get(key, 0) + value
    got = {k: v for k, v in got.items() if v != 0}
    missing = {k: v for k, v in truth.buckets.items() if got.get(k) != v}
    extra = {k: v for k, v in got.items() if k not in truth.buckets}
    assert not extra, f"engine has cells the truth lacks: {sorted(extra.items())[:5]}"
    assert not missing, (
        f"{len(missing)} cells differ, e.g. {sorted(missing.items())[:5]} "
        f"(engine: {[got.get(k) for k in sorted(missing)[:5]]})"
    )
    active: Counter[tuple[str, str]] = Counter()
    for engine in engines.values():
        active.update(engine.active_customers())
    assert {k: v for k, v in active.items() if v} == {
        k: v for k, v in truth.active_customers.items() if v
    }
