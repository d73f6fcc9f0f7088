"""DiffusionNFT's own knobs (docs/method.md, "RL with the critique reward"; the release's Kontext config)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from rationalrewards.training.rl_config import RLConfig


@dataclass
class NFTConfig(RLConfig):
    ALGO: ClassVar[str] = "nft"

    nft_beta: float = field(
        default=1.0,
        metadata={"help": "b in v+ = (1-b) v_old + b v and v- = (1+b) v_old - b v (the release: 1.0)."},
    )
    old_decay: int = field(
        default=1,
        metadata={
            "help": "Soft-EMA schedule of the old policy (the release's decay_type): 0 copies the trained policy "
            "each step; 1 decay = min(0.001 step, 0.5) (the release); 2 = 0 for 75 steps, then min(0.0075 (step - "
            "75), 0.999)."
        },
    )
    adaptive_weighting: bool = field(
        default=True,
        metadata={"help": "Divide each sample's x0 error by its mean absolute error (the release), else plain MSE."},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.old_decay not in (0, 1, 2):
            raise ValueError(f"old_decay is 0, 1 or 2, got {self.old_decay}")
        if self.nft_beta <= 0:
            raise ValueError("nft_beta must be positive")


def old_policy_decay(step: int, schedule: int) -> float:
    """Weight of the old policy in old <- decay old + (1 - decay) trained, after `step` updates."""
    flat, rate, cap = {0: (0, 0.0, 0.0), 1: (0, 0.001, 0.5), 2: (75, 0.0075, 0.999)}[schedule]
    return 0.0 if step < flat else min((step - flat) * rate, cap)
