"""Flow-GRPO's own knobs: SDE sampling with per-step log-probabilities and a clipped ratio objective."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from rationalrewards.training.rl_config import RLConfig


@dataclass
class GRPOConfig(RLConfig):
    ALGO: ClassVar[str] = "grpo"

    noise_level: float = field(
        default=0.7,
        metadata={"help": "a in the SDE's std = a sqrt(sigma / (1 - sigma)) (Flow-GRPO and the release: 0.7)."},
    )
    clip_range: float = field(default=1e-4, metadata={"help": "PPO ratio clip (Flow-GRPO: 1e-4)."})
    kl_beta: float = field(
        default=0.04,
        metadata={"help": "KL weight to the reference (LoRA off); Flow-GRPO configs range from 0 to 0.04."},
    )
    learning_rate: float = field(default=1e-4, metadata={"help": "AdamW learning rate."})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.noise_level <= 0:
            raise ValueError("noise_level must be positive")
        if self.clip_range <= 0:
            raise ValueError("clip_range must be positive")
