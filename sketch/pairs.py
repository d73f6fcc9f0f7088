"""Preference pairs with ground-truth labels: several seeds per prompt, the better image by the scene graphs.

An image's ground-truth utility is minus (spec errors + half the visual artifacts); the label is the image with the
higher utility, a tie when equal (ties are kept as ties), optionally flipped with probability `label_noise`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from rationalrewards.agents.generator import GeneratedImage
from rationalrewards.sketch.generator import SketchGenerator
from rationalrewards.sketch.scene import SceneGraph, load_scene, score_against_spec
from rationalrewards.sketch.spec import parse_scene_spec


def utility(scene: SceneGraph, prompt: str) -> float:
    result = score_against_spec(scene, parse_scene_spec(prompt))
    return -(len(result.errors) + 0.5 * len(scene.artifacts))


def label_for(u_a: float, u_b: float) -> str:
    return "A" if u_a > u_b else "B" if u_b > u_a else "tie"


def make_preference_pairs(
    prompts: Sequence[str],
    generator: SketchGenerator,
    *,
    seeds_per_prompt: int = 2,
    label_noise: float = 0.0,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Rows `{pair_id, prompt, image_a, image_b, label, true_label, utility_a, utility_b}` (paths to PNGs).

    With more than two seeds per prompt, consecutive seeds are paired (s0-s1, s2-s3, ...).
    """
    if seeds_per_prompt < 2:
        raise ValueError("a preference pair needs at least two seeds per prompt")
    if not 0.0 <= label_noise <= 1.0:
        raise ValueError("label_noise must be a probability in [0, 1]")
    rng = random.Random(seed)
    rows = []
    for p_index, prompt in enumerate(prompts):
        seeds = [seed * 1_000_003 + p_index * 101 + k for k in range(seeds_per_prompt)]
        images: list[GeneratedImage] = [generator.generate_one(prompt, s) for s in seeds]
        for k in range(0, len(images) - 1, 2):
            a, b = images[k], images[k + 1]
            u_a, u_b = utility(load_scene(a.image), prompt), utility(load_scene(b.image), prompt)
            truth = label_for(u_a, u_b)
            label = truth
            if rng.random() < label_noise:
                label = rng.choice([x for x in ("A", "B", "tie") if x != truth])
            rows.append(
                {
                    "pair_id": f"p{p_index:05d}-{k // 2}",
                    "prompt": prompt,
                    "image_a": a.image.uri,
                    "image_b": b.image.uri,
                    "label": label,
                    "true_label": truth,
                    "utility_a": u_a,
                    "utility_b": u_b,
                }
            )
    return rows
