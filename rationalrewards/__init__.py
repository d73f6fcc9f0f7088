"""rationalrewards: reasoning reward models for image generation, as agents.

The repository's top-level folders install as subpackages of this one (`rationalrewards.rewardmodel`,
`rationalrewards.agents`, `rationalrewards.graphs`, `rationalrewards.training`, `rationalrewards.cli`), so nothing
generic lands at the top of a user's site-packages. This module offers the everyday surface; every name is resolved on
first use (PEP 562), so `import rationalrewards` costs milliseconds and never imports torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it. Light modules (schemas, parsing) and heavy ones (graphs need langgraph; training
# needs torch) are treated alike: nothing is imported until the name is used.
_EXPORTS: dict[str, str] = {
    # core types and rules
    "Aspect": "rationalrewards.rewardmodel.schemas",
    "Task": "rationalrewards.rewardmodel.schemas",
    "Critique": "rationalrewards.rewardmodel.schemas",
    "PairwiseJudgement": "rationalrewards.rewardmodel.schemas",
    "Abstention": "rationalrewards.rewardmodel.schemas",
    "ImageRef": "rationalrewards.rewardmodel.schemas",
    "CritiqueRequest": "rationalrewards.rewardmodel.schemas",
    "CompareRequest": "rationalrewards.rewardmodel.schemas",
    "CritiqueParseError": "rationalrewards.rewardmodel.errors",
    "RewardModelError": "rationalrewards.rewardmodel.errors",
    "parse_critique": "rationalrewards.rewardmodel.parsing",
    "parse_pairwise": "rationalrewards.rewardmodel.parsing",
    "reward_from_critique": "rationalrewards.rewardmodel.scoring",
    "pairwise_accuracy": "rationalrewards.rewardmodel.scoring",
    "CritiqueReward": "rationalrewards.rewardmodel.reward_fn",
    # backends
    "RewardModel": "rationalrewards.rewardmodel.backends.base",
    "OpenAICompatibleRewardModel": "rationalrewards.rewardmodel.backends.openai_compat",
    "TransformersRewardModel": "rationalrewards.rewardmodel.backends.local",
    "FakeRewardModel": "rationalrewards.rewardmodel.testing",
    "FunctionRewardModel": "rationalrewards.rewardmodel.backends.function",
    "reward_model_from_spec": "rationalrewards.agents.factory",
    "SelfEnsemble": "rationalrewards.rewardmodel.backends.ensemble",
    "SketchOracle": "rationalrewards.sketch.oracle",
    "SketchGenerator": "rationalrewards.sketch.generator",
    # images and generators from Python
    "as_image_ref": "rationalrewards.rewardmodel.images",
    "image_ref_from_pil": "rationalrewards.rewardmodel.images",
    "load_pil": "rationalrewards.rewardmodel.images",
    "GeneratedImage": "rationalrewards.agents.generator",
    "ImageGenerator": "rationalrewards.agents.generator",
    "FunctionGenerator": "rationalrewards.agents.function_generator",
    "CriticRefiner": "rationalrewards.agents.refiner",
    "PromptRefiner": "rationalrewards.agents.refiner",
    "PreferencePair": "rationalrewards.agents.preferences",
    # data as published
    "iter_rows": "rationalrewards.agents.rows",
    "load_preferences": "rationalrewards.agents.preferences",
    "ColumnMap": "rationalrewards.agents.columns",
    "eval_rows": "rationalrewards.agents.benchmarks",
    # graphs
    "build_gcr_graph": "rationalrewards.graphs.gcr",
    "GCRConfig": "rationalrewards.graphs.gcr_config",
    "GCRContext": "rationalrewards.graphs.gcr",
    "build_parrot_graph": "rationalrewards.graphs.parrot",
    "ParrotConfig": "rationalrewards.graphs.parrot",
    "ParrotContext": "rationalrewards.graphs.parrot",
    "parrot_sft_rows": "rationalrewards.runtime.parrot_runner",
    "Tracer": "rationalrewards.graphs.trace",
    "read_trace": "rationalrewards.graphs.trace",
}

__all__ = [
    "Abstention",
    "Aspect",
    "ColumnMap",
    "CompareRequest",
    "CriticRefiner",
    "Critique",
    "CritiqueParseError",
    "CritiqueRequest",
    "CritiqueReward",
    "FakeRewardModel",
    "FunctionGenerator",
    "FunctionRewardModel",
    "GCRConfig",
    "GCRContext",
    "GeneratedImage",
    "ImageGenerator",
    "ImageRef",
    "OpenAICompatibleRewardModel",
    "PairwiseJudgement",
    "ParrotConfig",
    "ParrotContext",
    "PreferencePair",
    "PromptRefiner",
    "RewardModel",
    "RewardModelError",
    "SelfEnsemble",
    "SketchGenerator",
    "SketchOracle",
    "Task",
    "Tracer",
    "TransformersRewardModel",
    "__version__",
    "as_image_ref",
    "build_gcr_graph",
    "build_parrot_graph",
    "eval_rows",
    "image_ref_from_pil",
    "iter_rows",
    "load_pil",
    "load_preferences",
    "pairwise_accuracy",
    "parrot_sft_rows",
    "parse_critique",
    "parse_pairwise",
    "read_trace",
    "reward_from_critique",
    "reward_model_from_spec",
]
assert set(__all__) == set(_EXPORTS) | {"__version__"}, "__all__ and _EXPORTS list the same names"


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rationalrewards' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from rationalrewards.agents.benchmarks import eval_rows
    from rationalrewards.agents.columns import ColumnMap
    from rationalrewards.agents.factory import reward_model_from_spec
    from rationalrewards.agents.function_generator import FunctionGenerator
    from rationalrewards.agents.generator import GeneratedImage, ImageGenerator
    from rationalrewards.agents.preferences import PreferencePair, load_preferences
    from rationalrewards.agents.refiner import CriticRefiner, PromptRefiner
    from rationalrewards.agents.rows import iter_rows
    from rationalrewards.graphs.gcr import GCRContext, build_gcr_graph
    from rationalrewards.graphs.gcr_config import GCRConfig
    from rationalrewards.graphs.parrot import ParrotConfig, ParrotContext, build_parrot_graph
    from rationalrewards.graphs.trace import Tracer, read_trace
    from rationalrewards.rewardmodel.backends.base import RewardModel
    from rationalrewards.rewardmodel.backends.ensemble import SelfEnsemble
    from rationalrewards.rewardmodel.backends.function import FunctionRewardModel
    from rationalrewards.rewardmodel.backends.local import TransformersRewardModel
    from rationalrewards.rewardmodel.backends.openai_compat import OpenAICompatibleRewardModel
    from rationalrewards.rewardmodel.errors import CritiqueParseError, RewardModelError
    from rationalrewards.rewardmodel.images import as_image_ref, image_ref_from_pil, load_pil
    from rationalrewards.rewardmodel.parsing import parse_critique, parse_pairwise
    from rationalrewards.rewardmodel.reward_fn import CritiqueReward
    from rationalrewards.rewardmodel.schemas import (
        Abstention,
        Aspect,
        CompareRequest,
        Critique,
        CritiqueRequest,
        ImageRef,
        PairwiseJudgement,
        Task,
    )
    from rationalrewards.rewardmodel.scoring import pairwise_accuracy, reward_from_critique
    from rationalrewards.rewardmodel.testing import FakeRewardModel
    from rationalrewards.runtime.parrot_runner import parrot_sft_rows
    from rationalrewards.sketch.generator import SketchGenerator
    from rationalrewards.sketch.oracle import SketchOracle
