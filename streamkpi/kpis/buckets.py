"""Event-time buckets: index maths, component families, and the store of bucket cells.

A *family* is the set of components one rule module counts together, all under the same
label set (``spec.Labels``): e.g. the pageview family holds ``pageviews``, ``sessions``,
... by (campaign, channel). A *cell* is one family's row of values for one bucket and one
label tuple, stored in its bucket's flat ``array('q')`` (8 bytes a count, no int
objects) or, for a family with a currency component, a flat list whose money slots hold
``Decimal``. A component may sit in
several families (``conversions`` comes from leads and purchases); reads sum them.

Memory is bounded by expiry: a bucket ends its life once it is older than the longest
window plus the allowed lateness, relative to the highest watermark of the partition.
A later write into it (a cohort write for an old session, an event of a lagging topic)
is dropped and counted in ``dropped_writes``.
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections.abc import Callable, Iterator, MutableSequence, Sequence
from decimal import Context, Decimal
from typing import Any, Final, TypeAlias

from streamkpi.kpis import codec
from streamkpi.kpis.labels import LabelSpace
from streamkpi.kpis.spec import Labels, Unit, component

__all__ = [
    "MONEY",
    "Block",
    "BucketStore",
    "Family",
    "Row",
    "bucket_start",
]

# Sums of money are exact well past any real revenue (28 digits, Decimal's default, is not:
# 1e15 with 8 decimals from a currency rate already needs 24).
MONEY: Final = Context(prec=60)

# An array("q") of counts, or a list with Decimal money slots.
Row: TypeAlias = MutableSequence[Any]


def bucket_start(ts_s: float, bucket_s: int) -> int:
    """Return the start (epoch seconds) of the bucket holding ``ts_s``."""
    return int(ts_s // bucket_s) * bucket_s


class Family:
    """Components counted together under one label set; positions index a cell's row."""

    def __init__(self, code: str, components: Sequence[str]) -> None:
        """Check every name against ``spec`` and derive the row layout from it."""
        specs = [component(name) for name in components]  # KeyError: not in spec
        if not specs or len(set(components)) != len(components):
            raise ValueError(f"family {code}: components must be distinct and non-empty")
        if any(spec.stock for spec in specs):
            raise ValueError(f"family {code}: a stock is derived, never counted in buckets")
        labels = {spec.labels for spec in specs}
        if len(labels) != 1:
            raise ValueError(f"family {code} mixes label sets {sorted(labels)}")
        self.code = code
        self.components: tuple[str, ...] = tuple(components)
        self.labels: Labels = labels.pop()
        self.money: frozenset[int] = frozenset(
            i for i, spec in enumerate(specs) if spec.unit is Unit.currency
        )
        self._index = {name: i for i, name in enumerate(components)}
        self.template: Row = (
            [Decimal(0) if i in self.money else 0 for i in range(len(specs))]
            if self.money
            else array("q", [0] * len(specs))
        )

    def pos(self, name: str) -> int:
        """Return the position of component ``name`` in this family's rows."""
        return self._index[name]

    def encode(self, row: Row) -> bytes:
        """Encode a row as ``{component: value}`` of its non-zero values."""
        names = self.components
        return codec.dumps({names[i]: value for i, value in enumerate(row) if value})

    def decode(self, value: bytes) -> Row:
        """Decode a row; components this version does not count are ignored."""
        row = self.template[:]
        for name, number in codec.loads(value).items():
            i = self._index.get(name)
            if i is not None:
                row[i] = Decimal(number) if i in self.money else int(number)
        return row

    def __repr__(self) -> str:
        """Name the family by its code."""
        return f"Family({self.code!r})"


class Block:
    """The cells of one family in one bucket: rows back to back in one flat sequence.

    One ``array('q')`` per block instead of one per cell halves the memory of a full day
    of buckets (an array object costs ~80 bytes before its first value).
    """

    __slots__ = ("dead", "dirty", "family", "index", "snap", "start", "values", "width")

    def __init__(self, family: int, start: int, template: Row) -> None:
        """Start with no cells."""
        self.family = family
        self.start = start
        self.width = len(template)
        self.values: Row = template[:0]  # same type as the family's rows, empty
        self.index: dict[int, int] = {}  # label id -> offset of its row in values
        self.dirty: dict[int, None] = {}  # label ids changed since the last take_dirty
        # Label id -> the row as the window sums last saw it (see windows.WindowSums).
        self.snap: dict[int, Row] = {}
        self.dead = False

    def rows(self) -> Iterator[tuple[int, Row]]:
        """Yield (label id, copy of its row) for every cell."""
        values = self.values
        width = self.width
        for gid, offset in self.index.items():
            yield gid, values[offset : offset + width]

    def row(self, gid: int) -> Row:
        """Return a copy of the row of label id ``gid``."""
        offset = self.index[gid]
        return self.values[offset : offset + self.width]


# Offsets as shared int objects: a dict value above 256 would otherwise be its own object.
_OFFSETS: Final = list(range(1 << 16))


class BucketStore:
    """All cells of a partition, with O(changes) dirty tracking and expiry by watermark."""

    def __init__(
        self,
        families: Sequence[Family],
        spaces: dict[Labels, LabelSpace],
        bucket_s: int,
        keep_s: int,
    ) -> None:
        """Hold ``families`` with labels interned in ``spaces``; keep buckets ``keep_s``."""
        self.families = tuple(families)
        self.spaces = [spaces[family.labels] for family in self.families]
        self._by_code = {family.code: i for i, family in enumerate(self.families)}
        self._templates = [family.template for family in self.families]
        self.bucket_s = bucket_s
        self.keep_s = keep_s
        self.blocks: list[dict[int, Block]] = [{} for _ in self.families]
        self._starts: list[int] = []  # heap of live bucket starts
        self._live: set[int] = set()
        # Buckets starting at or before this are expired: a write there is dropped.
        self.dead_upto: float = -math.inf
        # The watermark from which expire() has something to do: a cheap test per event.
        self.next_expiry_wm: float = -math.inf
        self.dropped_writes = 0
        self.dirty_blocks: list[Block] = []
        self.tombstones: list[bytes] = []
        # Set by the window sums: rows of buckets in [snap_lo, snap_hi] are copied to
        # Block.snap before their first change after a scrape.
        self.snap_lo = 1
        self.snap_hi = 0
        self.snapped: list[Block] = []
        self.on_expire: Callable[[Block], None] | None = None

    def family_index(self, family: Family) -> int:
        """Return the index of ``family`` in this store."""
        return self._by_code[family.code]

    def cell(self, family: int, start: int, gid: int) -> tuple[Row, int] | None:
        """Return (values, offset) of a cell to update in place, marked changed.

        The cell's component ``pos`` is ``values[offset + pos]``. None if the bucket
        expired (the write is dropped and counted).
        """
        if start <= self.dead_upto:
            self.dropped_writes += 1
            return None
        block = self.blocks[family].get(start)
        if block is None:
            block = self._block(family, start)
        values = block.values
        offset = block.index.get(gid)
        if offset is None:
            size = len(values)
            offset = block.index[gid] = _OFFSETS[size] if size < len(_OFFSETS) else size
            values.extend(self._templates[family])
        dirty = block.dirty
        if not dirty:
            self.dirty_blocks.append(block)
        dirty[gid] = None
        if self.snap_lo <= start <= self.snap_hi:
            snap = block.snap
            if gid not in snap:
                if not snap:
                    self.snapped.append(block)
                snap[gid] = values[offset : offset + block.width]
        return values, offset

    def add_money(self, family: int, start: int, gid: int, pos: int, amount: Decimal) -> None:
        """Add ``amount`` to a money component, exactly."""
        cell = self.cell(family, start, gid)
        if cell is not None:
            values, offset = cell
            values[offset + pos] = MONEY.add(values[offset + pos], amount)

    def _block(self, family: int, start: int) -> Block:
        block = self.blocks[family][start] = Block(family, start, self._templates[family])
        if start not in self._live:
            self._live.add(start)
            heapq.heappush(self._starts, start)
        return block

    def expire(self, max_wm: float) -> None:
        """Drop the buckets ending ``keep_s`` or more before ``max_wm``."""
        limit = bucket_start(max_wm - self.keep_s, self.bucket_s) - self.bucket_s
        if limit <= self.dead_upto:
            return
        self.dead_upto = limit
        self.next_expiry_wm = limit + 2 * self.bucket_s + self.keep_s
        starts = self._starts
        while starts and starts[0] <= limit:
            start = heapq.heappop(starts)
            self._live.discard(start)
            for family, blocks in enumerate(self.blocks):
                block = blocks.pop(start, None)
                if block is None:
                    continue
                block.dead = True
                if self.on_expire is not None:
                    self.on_expire(block)
                code = self.families[family].code
                labels = self.spaces[family].labels
                for gid in block.index:
                    self.tombstones.append(cell_key(code, start, labels[gid]))

    def take_dirty(self, out: list[tuple[bytes, bytes | None]]) -> None:
        """Append the changed cells' entries (and the expired cells' tombstones) to ``out``."""
        out.extend((key, None) for key in self.tombstones)
        self.tombstones.clear()
        for block in self.dirty_blocks:
            if block.dead:
                continue
            family = self.families[block.family]
            labels = self.spaces[block.family].labels
            for gid in block.dirty:
                out.append(
                    (cell_key(family.code, block.start, labels[gid]), family.encode(block.row(gid)))
                )
            block.dirty.clear()
        self.dirty_blocks.clear()

    def take_all(self, out: list[tuple[bytes, bytes | None]]) -> None:
        """Append the entry of every cell to ``out`` (O(state): for tests and debugging)."""
        for family_index, start, gid, row in self.cells():
            family = self.families[family_index]
            labels = self.spaces[family_index].labels[gid]
            out.append((cell_key(family.code, start, labels), family.encode(row)))

    def load(self, key_rest: bytes, value: bytes) -> None:
        """Restore one cell entry (key without its ``b|`` prefix)."""
        code, start, *labels = codec.loads(key_rest)
        family = self._by_code.get(code)
        if family is None:
            return  # a family this version does not count
        gid = self.spaces[family].gid(tuple(labels))
        block = self.blocks[family].get(start)
        if block is None:
            block = self._block(family, start)
        row = self.families[family].decode(value)
        offset = block.index.get(gid)
        if offset is None:
            size = len(block.values)
            block.index[gid] = _OFFSETS[size] if size < len(_OFFSETS) else size
            block.values.extend(row)
        else:
            block.values[offset : offset + block.width] = row

    def cells(self) -> Iterator[tuple[int, int, int, Row]]:
        """Yield (family index, bucket start, label id, row) for every cell."""
        for family, blocks in enumerate(self.blocks):
            for start, block in blocks.items():
                for gid, row in block.rows():
                    yield family, start, gid, row

    def __len__(self) -> int:
        """Return the number of cells."""
        return sum(len(block.index) for blocks in self.blocks for block in blocks.values())


def cell_key(code: str, start: int, labels: tuple[str, ...]) -> bytes:
    """Return the entry key of a cell."""
    return codec.json_key(codec.BUCKET, [code, start, *labels])
