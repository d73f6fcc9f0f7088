"""Shards of a batch job (`--shard i/N`), for Slurm job arrays and Ray workers: shard i of N takes items i, i+N, i+2N,
... of the input in its order, so N workers with N run directories cover every item exactly once; `rationalrewards
merge` joins their run directories afterwards."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def parse_shard(spec: str) -> tuple[int, int]:
    """`"i/N"` with 0 <= i < N (Slurm's `$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT` with a 0-based array)."""
    index, slash, count = str(spec).partition("/")
    if not slash or not index.strip().isdigit() or not count.strip().isdigit():
        raise ValueError(f"--shard takes i/N such as 0/4 (shard i of N, counting from 0), got {spec!r}")
    i, n = int(index), int(count)
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {spec}: i must be 0 to N-1 and N at least 1")
    return i, n


def shard_items(items: Sequence[T], spec: str | None) -> Sequence[T]:
    """The items of shard `spec` (all of them without one), as the same kind of sequence (a compact `Suite` stays one)."""
    if spec is None:
        return items
    i, n = parse_shard(spec)
    return items[i::n]
