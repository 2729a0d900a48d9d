"""Dedup chunks are bounded in bytes, not only in ids (#12)."""

from __future__ import annotations

from streamkpi.kpis.dedup import CHUNK_BYTES, Dedup


def test_chunks_of_long_ids_stay_below_the_byte_bound_and_restore() -> None:
    # 1,000 ids of 1.1 KB made one 1.1 MB chunk the broker refused.
    dedup = Dedup("pageviews", horizon_s=3600, slot_s=60)
    ids = [f"{n:04d}" + "x" * 1100 for n in range(1000)]
    for event_id in ids:
        dedup.remember(event_id, 1000.0)
    out: list[tuple[bytes, bytes | None]] = []
    dedup.take_dirty(out)
    sizes = [len(value) for _, value in out if value is not None]
    assert len(sizes) > 1
    assert max(sizes) <= CHUNK_BYTES
    assert sum(sizes) > 1_100_000  # every id is in some chunk
    restored = Dedup("pageviews", horizon_s=3600, slot_s=60)
    chunks: dict[int, dict[int, bytes]] = {}
    for key, value in out:
        assert value is not None
        _, _, slot, n = key.split(b"|")
        chunks.setdefault(int(slot), {})[int(n)] = value
    restored.load(chunks)
    assert restored.ids == dedup.ids
    assert all(restored.seen(event_id, 1000.0) for event_id in ids)
