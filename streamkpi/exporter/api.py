"""The ``/kpis`` JSON API and the KPI snapshot records, both built from engine rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from streamkpi import jsonbytes
from streamkpi.kpis.spec import Labels
from streamkpi.kpis.values import Row, kpi_values, report

__all__ = ["ApiError", "kpis_document", "snapshot_records"]

SNAPSHOT_SCHEMA = 1


class ApiError(ValueError):
    """A bad query: the message is returned with HTTP 400."""


def kpis_document(
    rows: Iterable[Row],
    query: Mapping[str, str] | Iterable[tuple[str, str]],
    *,
    windows: tuple[str, ...],
    reference_s: float,
    partitions: Iterable[int],
) -> dict[str, Any]:
    """Answer ``GET /kpis?window=&campaign=&channel=`` for this worker's partitions.

    ``query`` is the query string's (name, value) pairs (or a mapping): a repeated
    parameter is refused, not silently read as its first value (#12).
    """
    query = _single_valued(query)
    unknown = set(query) - {"window", "campaign", "channel"}
    if unknown:
        raise ApiError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    window = query.get("window", windows[0])
    if window not in windows:
        raise ApiError(f"window {window!r} is not one of {', '.join(windows)}")
    body = report(rows, window, campaign=query.get("campaign"), channel=query.get("channel"))
    return {
        "scope": "worker",
        "partitions": sorted(partitions),
        "reference_s": reference_s,
        **body,
    }


def _single_valued(query: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    pairs = list(query.items()) if isinstance(query, Mapping) else list(query)
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            values = ", ".join(repr(v) for n, v in pairs if n == name)
            raise ApiError(f"parameter {name!r} is given more than once ({values}); give it once")
        out[name] = value
    return out


def snapshot_records(
    partition: int,
    rows: Iterable[Row],
    *,
    reference_s: float,
    previous: set[bytes],
) -> tuple[list[tuple[bytes, bytes | None]], set[bytes]]:
    """Return (key, value) snapshot records of one partition, plus the keys now live.

    One record per (campaign, channel, window) — page rows as (page, window) — keyed with
    the partition: a consumer keeps the latest record per key and sums the components over
    partitions to get exact totals across any number of workers. Keys of ``previous`` that
    have no row any more get a tombstone (``None``), so a vanished campaign stops counting.
    """
    cells: dict[tuple[str, tuple[str, ...], str], dict[str, int | Decimal]] = {}
    for component, window, labels, value in rows:
        kind = "page" if len(labels) == 1 else "campaign_channel"
        cell = cells.setdefault((kind, labels, window), {})
        cell[component] = cell.get(component, 0) + value
    records: list[tuple[bytes, bytes | None]] = []
    live: set[bytes] = set()
    for (kind, labels, window), components in sorted(cells.items()):
        key = jsonbytes.dumps([partition, kind, *labels, window])
        live.add(key)
        label_names = ("page",) if kind == "page" else ("campaign", "channel")
        document: dict[str, Any] = {
            "schema": SNAPSHOT_SCHEMA,
            "partition": partition,
            **dict(zip(label_names, labels, strict=True)),
            "window": window,
            "reference_s": reference_s,
            "components": {
                name: n if isinstance(n, int) else str(n) for name, n in sorted(components.items())
            },
            # Ratios of this partition alone, for convenience: to combine partitions, add
            # the components and divide again.
            "kpis": kpi_values(
                components, Labels.page if kind == "page" else Labels.campaign_channel
            ),
        }
        records.append((key, jsonbytes.dumps(document)))
    records.extend((key, None) for key in sorted(previous - live))
    return records, live
