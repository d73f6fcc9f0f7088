"""The reward model as a model: critique types, prompt formats, parsing, scoring rules and backends.

Only light modules are imported here; backends that need torch or an HTTP client load on first use, and the reward
function for trainers lives in `rewardmodel.reward_fn`.
"""

from rationalrewards.rewardmodel.errors import (
    CritiqueParseError,
    InvalidImageError,
    NoActiveAspectsError,
    RewardModelError,
    RewardRequestError,
    RewardServerError,
)
from rationalrewards.rewardmodel.parsing import parse_critique, parse_pairwise
from rationalrewards.rewardmodel.schemas import (
    Abstention,
    Aspect,
    AspectAssessment,
    CompareRequest,
    Critique,
    CritiqueRequest,
    ImageRef,
    PairwiseAspect,
    PairwiseJudgement,
    Task,
    decide_pairwise,
)
from rationalrewards.rewardmodel.scoring import pairwise_accuracy, reward_from_critique

__all__ = [
    "Abstention",
    "Aspect",
    "AspectAssessment",
    "CompareRequest",
    "Critique",
    "CritiqueParseError",
    "CritiqueRequest",
    "ImageRef",
    "InvalidImageError",
    "NoActiveAspectsError",
    "PairwiseAspect",
    "PairwiseJudgement",
    "RewardModelError",
    "RewardRequestError",
    "RewardServerError",
    "Task",
    "decide_pairwise",
    "pairwise_accuracy",
    "parse_critique",
    "parse_pairwise",
    "reward_from_critique",
]
