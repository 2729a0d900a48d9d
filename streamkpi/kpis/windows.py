"""Trailing windows: membership maths and running sums kept up to date between scrapes.

README: an exported window is the sum of the ``window / bucket_s`` most recent buckets up
to and including the bucket of the reference time. Summing a 24 h window from scratch at
every scrape would touch every cell of every bucket (1,440 buckets x the label tuples);
instead each window keeps a running sum per (family, label id) as of the last reference
bucket, and a scrape only applies what changed since:

* cells changed since the last scrape in buckets the windows cover: the store copies a
  cell to ``Block.snap`` before its first change, the scrape adds ``row - snap``;
* buckets entering or leaving a window as the reference moves: added or subtracted whole;
* buckets expiring while a window covers them: subtracted as the sums saw them.

A reference older than the last one, or more than the longest window ahead, rebuilds the
sums from the cells.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import localcontext
from typing import Any

from streamkpi.kpis.buckets import MONEY, Block, BucketStore, Row, bucket_start

__all__ = ["WindowSums", "in_window", "window_buckets"]


def window_buckets(reference_s: float, window_s: int, bucket_s: int) -> tuple[int, int]:
    """Return the first and last bucket start of the window ending at ``reference_s``."""
    last = bucket_start(reference_s, bucket_s)
    return last - window_s + bucket_s, last


def in_window(start: int, reference_s: float, window_s: int, bucket_s: int) -> bool:
    """Say whether the bucket starting at ``start`` is in the window ending at ``reference_s``."""
    first, last = window_buckets(reference_s, window_s, bucket_s)
    return first <= start <= last


Sums = dict[int, list[Any]]  # label id -> summed row


class WindowSums:
    """Per window, the sum of each family's rows over the window's buckets."""

    def __init__(self, store: BucketStore, window_s: Mapping[str, int]) -> None:
        """Sum the cells of ``store`` over ``window_s`` (label -> seconds, shortest first)."""
        self._store = store
        self._bucket_s = store.bucket_s
        self.labels = list(window_s)
        self._spans = list(window_s.values())
        self._longest = max(self._spans)
        self.ref: int | None = None  # the reference bucket the sums are valid for
        families = len(store.families)
        # [window][family] -> label id -> summed row
        self.sums: list[list[Sums]] = [[{} for _ in range(families)] for _ in self._spans]
        store.on_expire = self._expired

    def refresh(self, reference_s: float) -> None:
        """Bring the sums to the window ending at ``reference_s``."""
        store = self._store
        new_ref = bucket_start(reference_s, self._bucket_s)
        old_ref = self.ref
        with localcontext(MONEY):
            if old_ref is None or new_ref < old_ref or new_ref - old_ref >= self._longest:
                self._rebuild(new_ref)
            else:
                self._apply_changes(old_ref)
                for start in range(old_ref + self._bucket_s, new_ref + 1, self._bucket_s):
                    self._slide(start)
        self.ref = new_ref
        store.snap_lo = new_ref - self._longest + self._bucket_s
        store.snap_hi = new_ref

    def _targets(self, family: int, age: int) -> list[Sums]:
        """Return the sums of the windows holding a bucket ``age`` seconds before the ref."""
        return [self.sums[i][family] for i, span in enumerate(self._spans) if 0 <= age < span]

    @staticmethod
    def _add(target: Sums, gid: int, row: Row) -> None:
        acc = target.get(gid)
        if acc is None:
            target[gid] = list(row)
            return
        for i, value in enumerate(row):
            if value:
                acc[i] += value

    @staticmethod
    def _sub(target: Sums, gid: int, row: Row) -> None:
        acc = target.get(gid)
        if acc is None:
            target[gid] = [-value for value in row]
            return
        for i, value in enumerate(row):
            if value:
                acc[i] -= value

    def _add_block(self, targets: list[Sums], block: Block) -> None:
        for gid, row in block.rows():
            for target in targets:
                self._add(target, gid, row)

    def _rebuild(self, ref: int) -> None:
        store = self._store
        for per_window in self.sums:
            for sums in per_window:
                sums.clear()
        for block in store.snapped:
            block.snap.clear()
        store.snapped.clear()
        for family, blocks in enumerate(store.blocks):
            for start, block in blocks.items():
                targets = self._targets(family, ref - start)
                if targets:
                    self._add_block(targets, block)

    def _apply_changes(self, ref: int) -> None:
        store = self._store
        for block in store.snapped:
            snap = block.snap
            if block.dead or not snap:
                snap.clear()
                continue
            targets = self._targets(block.family, ref - block.start)
            for gid, old in snap.items():
                row = block.row(gid)
                delta = [new - was for new, was in zip(row, old, strict=True)]
                for target in targets:
                    self._add(target, gid, delta)
            snap.clear()
        store.snapped.clear()

    def _slide(self, ref: int) -> None:
        """Move the reference one bucket on, to ``ref``."""
        for family, blocks in enumerate(self._store.blocks):
            block = blocks.get(ref)
            if block is not None:
                self._add_block([per_window[family] for per_window in self.sums], block)
            for i, span in enumerate(self._spans):
                old = blocks.get(ref - span)
                if old is not None:
                    sums = self.sums[i][family]
                    for gid, row in old.rows():
                        self._sub(sums, gid, row)

    def _expired(self, block: Block) -> None:
        """Take an expiring bucket out of the windows that hold it, as they saw it."""
        if self.ref is None:
            return
        targets = self._targets(block.family, self.ref - block.start)
        snap = block.snap
        if targets:
            with localcontext(MONEY):
                for gid, row in block.rows():
                    seen = snap.get(gid, row)
                    for target in targets:
                        self._sub(target, gid, seen)
        snap.clear()
