"""Groups, advantages and masks for one RL step (pure logic, no tensors).

A group is the samples of one prompt *and one source image*: two edits of different photos with the same instruction
are different tasks, so they never share a mean (the release keyed groups by prompt text alone). A sample whose
critique abstained has no reward: it is masked out of its group's statistics and the loss, never scored 0 (the
release's worst reward). Advantages follow the method (docs/method.md): (r - group mean) / std, the std over the whole step's samples
("global", the paper) or the group's own ("group"), clipped to +-clip. A group whose std is below `ban_std` and mean
above `ban_mean` is solved: its samples carry no signal and the trainer stops drawing its prompt (the release's
`ban_prompt`). A group with fewer than two scored samples has no baseline and is masked too.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

GroupKey = tuple[str, str | None]  # (prompt, source image sha256 or None)


def group_key(prompt: str, source_sha256: str | None) -> GroupKey:
    return (prompt, source_sha256)


@dataclass(frozen=True)
class StepAdvantages:
    advantages: list[float]  # one per sample; 0.0 where masked
    mask: list[bool]  # True: the sample trains
    abstained: int
    solved: list[GroupKey] = field(default_factory=list)
    groups: int = 0
    groups_without_baseline: int = 0
    reward_std: float = 0.0  # the global std of scored rewards
    mean_group_std: float = 0.0


def _normalised(
    values: Sequence[float | None], keys: Sequence[GroupKey], std_mode: str, clip: float
) -> tuple[list[float], dict[GroupKey, tuple[float, float]], float]:
    """Per-sample clipped advantages of one reward series (None stays 0), each group's (mean, std), the global std."""
    members: dict[GroupKey, list[int]] = {}
    for index, key in enumerate(keys):
        members.setdefault(key, []).append(index)
    scored = [v for v in values if v is not None]
    global_std = statistics.pstdev(scored) if len(scored) > 1 else 0.0
    stats: dict[GroupKey, tuple[float, float]] = {}
    advantages = [0.0] * len(values)
    for key, indices in members.items():
        group = [value for i in indices if (value := values[i]) is not None]
        if not group:
            continue
        mean = statistics.fmean(group)
        std = statistics.pstdev(group) if len(group) > 1 else 0.0
        stats[key] = (mean, std)
        scale = (global_std if std_mode == "global" else std) + 1e-4
        for i in indices:
            value = values[i]
            if value is not None:
                advantages[i] = max(-clip, min(clip, (value - mean) / scale))
    return advantages, stats, global_std


def step_advantages(
    rewards: Sequence[float | None],
    keys: Sequence[GroupKey],
    *,
    aspects: Mapping[str, Sequence[float | None]] | None = None,
    terms: Mapping[str, tuple[float, Sequence[float | None]]] | None = None,
    std_mode: str = "global",
    clip: float = 5.0,
    ban_std: float = 0.05,
    ban_mean: float = 0.9,
    ban_solved: bool = True,
) -> StepAdvantages:
    """Advantages of one step's samples. With `aspects` (per-aspect rewards, each series aligned with `rewards`), each
    aspect is normalised within its group and the sample's advantage is the mean over the aspects it was scored on.
    With `terms` (name -> (weight, series): several rewards, `_rl_rewards.py`), likewise, weighted."""
    if len(rewards) != len(keys):
        raise ValueError(f"{len(rewards)} rewards but {len(keys)} group keys")
    advantages, stats, global_std = _normalised(rewards, keys, std_mode, clip)
    weighted = dict(terms or {}) or {name: (1.0, series) for name, series in (aspects or {}).items()}
    if weighted:
        per_term = [
            (weight, series, _normalised(series, keys, std_mode, clip)[0]) for weight, series in weighted.values()
        ]
        for i in range(len(rewards)):
            scored = [(w, adv[i]) for w, series, adv in per_term if series[i] is not None]
            total = sum(w for w, _ in scored)
            advantages[i] = sum(w * a for w, a in scored) / total if scored else 0.0
    counts: dict[GroupKey, int] = {}
    for key, reward in zip(keys, rewards, strict=True):
        counts[key] = counts.get(key, 0) + (reward is not None)
    solved = [
        key
        for key, (mean, std) in stats.items()
        if ban_solved and std < ban_std and mean > ban_mean and counts[key] > 1
    ]
    no_baseline = {key for key, count in counts.items() if count < 2}
    mask = [r is not None and k not in no_baseline and k not in solved for r, k in zip(rewards, keys, strict=True)]
    return StepAdvantages(
        advantages=[a if m else 0.0 for a, m in zip(advantages, mask, strict=True)],
        mask=mask,
        abstained=sum(r is None for r in rewards),
        solved=solved,
        groups=len(counts),
        groups_without_baseline=len(no_baseline),
        reward_std=global_std,
        mean_group_std=statistics.fmean([std for _, std in stats.values()]) if stats else 0.0,
    )


def nft_weights(advantages: Sequence[float], clip: float) -> list[float]:
    """DiffusionNFT's per-sample weight of the positive branch: w = clamp(adv / (2 clip) + 0.5, 0, 1) (adv / 10 + 0.5
    at clip 5, docs/method.md)."""
    return [min(1.0, max(0.0, a / (2 * clip) + 0.5)) for a in advantages]
