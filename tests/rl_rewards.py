"""Reward functions for the RL tests, importable as `py:tests.rl_rewards:NAME` by the CLI."""

from __future__ import annotations

import hashlib

import numpy as np

from rationalrewards.rewardmodel.images import load_pil
from rationalrewards.rewardmodel.schemas import Abstention, CritiqueRequest


def _darkness(request: CritiqueRequest, below: float = 0.48) -> float:
    """A score in [1, 4] from a simple image statistic the tiny pipeline can move: how far the mean grey level of the
    image falls below `below` (a random tiny SD3/FLUX VAE decodes to about 0.46, the tiny Qwen-Image VAE to 0.49)."""
    grey = np.asarray(load_pil(request.image).convert("L"), dtype=np.float32) / 255
    return float(np.clip(1 + 3 * (below - grey.mean()) / 0.04, 1.0, 4.0))


def qwen_darkness(request: CritiqueRequest) -> dict[str, float | None]:
    """`darkness` for the tiny Qwen-Image pipeline, whose VAE decodes a little lighter."""
    score = _darkness(request, below=0.51)
    scores: dict[str, float | None] = {"text_faithfulness": score, "physical_quality": score, "text_rendering": None}
    if request.source_image is not None:
        scores["image_faithfulness"] = score
    return scores


def darkness(request: CritiqueRequest) -> dict[str, float | None]:
    score = _darkness(request)
    scores: dict[str, float | None] = {"text_faithfulness": score, "physical_quality": score, "text_rendering": None}
    if request.source_image is not None:
        scores["image_faithfulness"] = score
    return scores


def sometimes_abstains(request: CritiqueRequest) -> dict[str, float | None] | Abstention:
    """Abstains on about a quarter of the images (by their hash), scores the rest as `darkness`."""
    if int(hashlib.sha256(request.image.sha256.encode()).hexdigest(), 16) % 4 == 0:
        return Abstention(reason="parse_error", detail="test critic declines this image")
    return darkness(request)


def always_abstains(request: CritiqueRequest) -> Abstention:
    return Abstention(reason="parse_error", detail="test critic declines every image")


def hangs(request: CritiqueRequest) -> float:
    """A critic that never answers (a stuck model call): RL must stop at its reward deadline, not hang."""
    import time

    time.sleep(3600)
    return 1.0
