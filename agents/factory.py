"""One place that turns a CLI/config spec into a reward-model backend (and the only one that picks real libraries).

Specs: `sketch` (the sketch world's oracle: judges sketch images from their scene-graph sidecars), `fake`
(deterministic, for trying the tools), an `http(s)://` URL of an OpenAI-compatible server (vLLM, SGLang,
`transformers serve`, a hosted API; the key comes from $RATIONALREWARDS_API_KEY), or a local model directory
(in-process transformers).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rewardmodel.backends.base import RewardModel

API_KEY_ENV = "RATIONALREWARDS_API_KEY"


def reward_model_from_spec(spec: str, *, model: str | None = None, **options: Any) -> RewardModel:
    if spec == "sketch":
        from agents.sketch.oracle import SketchOracle  # the embedded world's privileged critic (needs sidecars)

        return SketchOracle(**options)
    if spec == "fake":
        from rewardmodel.testing import FakeRewardModel

        return FakeRewardModel()
    if spec.startswith(("http://", "https://")):
        from rewardmodel.backends.openai_compat import OpenAICompatibleRewardModel

        return OpenAICompatibleRewardModel(spec, model, api_key=os.environ.get(API_KEY_ENV), **options)
    if Path(spec).is_dir():
        from rewardmodel.backends.local import TransformersRewardModel

        return TransformersRewardModel(spec, **options)
    raise ValueError(
        f"unknown critic {spec!r}: use 'sketch', 'fake', an http(s):// URL of an OpenAI-compatible server, "
        "or a local model directory"
    )
