"""Training: distillation of a critic (`distill_*`) and diffusion RL with critique rewards (`NFTTrainer`,
`GRPOTrainer`). Names load lazily: importing the package does not import torch."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

_EXPORTS = {
    "NFTConfig": "nft_config",
    "NFTTrainer": "nft_trainer",
    "GRPOConfig": "grpo_config",
    "GRPOTrainer": "grpo_trainer",
    "RLConfig": "rl_config",
    "PromptItem": "rl_trainer",
    "DistillConfig": "distill_config",
}
__all__ = ["DistillConfig", "GRPOConfig", "GRPOTrainer", "NFTConfig", "NFTTrainer", "PromptItem", "RLConfig"]
assert set(__all__) == set(_EXPORTS)


def __getattr__(name: str) -> object:
    """Each name from its module on first use (type checkers read the imports below instead)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)


if TYPE_CHECKING:
    from rationalrewards.training.distill_config import DistillConfig
    from rationalrewards.training.grpo_config import GRPOConfig
    from rationalrewards.training.grpo_trainer import GRPOTrainer
    from rationalrewards.training.nft_config import NFTConfig
    from rationalrewards.training.nft_trainer import NFTTrainer
    from rationalrewards.training.rl_config import RLConfig
    from rationalrewards.training.rl_trainer import PromptItem
