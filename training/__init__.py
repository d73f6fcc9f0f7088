"""Training: distillation of a critic (`distill_*`) and diffusion RL with critique rewards (`NFTTrainer`,
`GRPOTrainer`). Names load lazily: importing the package does not import torch."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "NFTConfig": "nft_config",
    "NFTTrainer": "nft_trainer",
    "GRPOConfig": "grpo_config",
    "GRPOTrainer": "grpo_trainer",
    "RLConfig": "rl_config",
    "PromptItem": "rl_trainer",
    "DistillConfig": "distill_config",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
