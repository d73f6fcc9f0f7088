"""What the experiments share: an output folder bound to its settings, stages whose figures are kept so a rerun
continues where a stopped run ended, and bootstrap intervals."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def bind_settings(out: Path, settings: dict[str, object], experiment: str) -> None:
    """`out/settings.json`: a rerun into the same folder continues the run (finished stages are reused) only with the
    same settings; other settings would mix two experiments in one table."""
    path = out / "settings.json"
    current = json.loads(json.dumps(settings))  # tuples as lists, as they come back from the file
    if path.is_file():
        earlier = json.loads(path.read_text())
        changed = sorted(k for k in set(earlier) | set(current) if earlier.get(k) != current.get(k))
        if changed:
            raise ValueError(
                f"{out} holds a {experiment} run with other settings ({', '.join(changed)}); "
                "use another --out, or delete the folder to start over"
            )
        return
    path.write_text(json.dumps(current, indent=1))


def cached_json(path: Path, compute: Callable[[], dict[str, object]]) -> dict[str, Any]:
    """`compute()`'s figures, kept in `path` (written whole or not at all): a rerun reads them instead of computing
    them again."""
    if path.is_file():
        cached: dict[str, object] = json.loads(path.read_text())
        return cached
    text = json.dumps(compute(), indent=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)
    figures: dict[str, object] = json.loads(text)  # what a rerun reads back (tuples as lists): both runs see the same
    return figures


def bootstrap_interval(outcomes: Sequence[float], *, draws: int = 2000, seed: int = 0) -> tuple[float, float] | None:
    """95% percentile interval of the mean of `outcomes` (0/1 or any numbers)."""
    if not outcomes:
        return None
    rng = random.Random(seed)
    n = len(outcomes)
    means = sorted(sum(outcomes[rng.randrange(n)] for _ in range(n)) / n for _ in range(draws))
    return means[int(0.025 * draws)], means[int(0.975 * draws) - 1]


__all__ = ["bind_settings", "bootstrap_interval", "cached_json"]
