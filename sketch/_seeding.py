"""Deterministic randomness for the sketch world: every random choice is seeded from the things it depends on."""

from __future__ import annotations

import hashlib
import random


def seeded_rng(*parts: object) -> random.Random:
    """A `random.Random` seeded by a hash of `parts`: same parts, same choices, on every machine and run."""
    return random.Random(int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "big"))
