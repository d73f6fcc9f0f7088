"""Scalar rewards of the reward-hacking experiment (issue 17): the exploitable colour share and the learned
Bradley-Terry reward model, both served as reward models."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from rationalrewards.experiments.scalar_reward import (
    ScalarRewardSettings,
    flawed,
    learned_scalar_reward,
    train_scalar_reward,
)
from rationalrewards.rewardmodel.images import image_ref_from_pil
from rationalrewards.rewardmodel.schemas import Abstention, CritiqueRequest, Task
from rationalrewards.rewardmodel.scoring import reward_from_critique
from rationalrewards.sketch.scalar_rewards import color_share, color_share_reward
from rationalrewards.sketch.small_world import SmallPrompt, render_small, small_scene, split_prompts


def _render(prompt: SmallPrompt, seed: int = 0, **change):  # type: ignore[no-untyped-def]
    scene = small_scene(prompt, seed)
    return render_small(scene.model_copy(update=change) if change else scene)


def test_color_share_tracks_quality_and_can_be_raised_by_drawing_more() -> None:
    prompt = SmallPrompt("red", "car", 2)
    right = color_share(_render(prompt), "red")
    assert color_share(_render(prompt, objects=()), "red") == 0.0
    assert color_share(_render(SmallPrompt("blue", "car", 2)), "red") == 0.0
    assert color_share(_render(prompt, objects=small_scene(prompt, 0).objects[:1]), "red") < right
    big = _render(SmallPrompt("red", "car", 1))  # one larger object
    many = _render(SmallPrompt("red", "car", 4))
    assert (
        max(color_share(big, "red"), color_share(many, "red")) > right
    )  # the exploit: not what was asked, more reward


def test_color_share_reward_is_a_reward_model_and_abstains_without_a_colour(tmp_path: Path) -> None:
    prompt = SmallPrompt("green", "boat", 3)
    critic = color_share_reward()
    good = CritiqueRequest(task=Task.t2i, prompt=prompt.text, image=image_ref_from_pil(_render(prompt), tmp_path))
    uncoloured = CritiqueRequest(task=Task.t2i, prompt="a photo of three boats", image=good.image)
    critique, refused = asyncio.run(critic.critique([good, uncoloured]))
    assert 0.0 < reward_from_critique(critique) < 1.0
    assert isinstance(refused, Abstention) and "colour" in refused.detail


def test_flaws_change_what_the_prompt_asks_about() -> None:
    rng = random.Random(0)
    prompt = SmallPrompt("yellow", "bus", 3)
    scene = small_scene(prompt, 1)
    for _ in range(20):
        bad = flawed(scene, prompt, rng)
        colours = [o.color for o in bad.objects]
        assert len(bad.objects) != 3 or any(c != "yellow" for c in colours)


@pytest.mark.slow
def test_bradley_terry_reward_learns_to_prefer_correct_images(tmp_path: Path) -> None:
    train, held = split_prompts()
    settings = ScalarRewardSettings(per_prompt=4, steps=300, batch_size=64)
    report = train_scalar_reward(tmp_path / "bt", train, held, settings)
    assert report["held_out_pair_accuracy"] >= 0.75, report
    assert report["score_scale"] > 0
    critic = learned_scalar_reward(tmp_path / "bt")
    prompt = next(p for p in held if p.count == 2)
    layouts = [_render(prompt, seed) for seed in range(8)]
    missing = [_render(prompt, seed, objects=small_scene(prompt, seed).objects[:1]) for seed in range(8)]
    requests = [
        CritiqueRequest(task=Task.t2i, prompt=prompt.text, image=image_ref_from_pil(image, tmp_path))
        for image in layouts + missing
    ]
    rewards = [reward_from_critique(c) for c in asyncio.run(critic.critique(requests))]
    assert all(0.0 <= r <= 1.0 for r in rewards)
    # Calibrated, not saturated: images of one prompt get different rewards (RL's advantages compare them), and the
    # right count beats a missing object on average.
    assert len({round(r, 4) for r in rewards[:8]}) > 1, rewards
    assert sum(rewards[:8]) > sum(rewards[8:]), rewards
