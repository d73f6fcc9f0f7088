"""Reward-model backends. Import the one you need; `local` pulls in torch, the others do not."""

from rationalrewards.rewardmodel.backends.base import Completion, RewardModel

__all__ = ["Completion", "RewardModel"]
