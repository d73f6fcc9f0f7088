"""A learned scalar reward model for the 32-pixel sketch world: the usual Bradley-Terry reward model, for the
reward-hacking experiment's "scalar, learned" arm (paper, Fig. 3: scalar reward models are hacked where critique
rewards are not).

Trained by our code on small-world preference pairs: for a prompt, a correct render against a flawed one (one object
too many or too few, one object or all of them in another colour, or a blank canvas), in random order, with mild
noise and soft edges so it has seen images that look generated. The model is a small CNN over the image and a
bag-of-words embedding of the prompt, one scalar out; the loss is -log sigmoid(s_preferred - s_other). As a reward it
gives sigmoid(s) in (0, 1), served as a critique whose aspects all carry 1 + 3 sigmoid(s).
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rationalrewards.experiments.settings import ScalarRewardSettings
from rationalrewards.sketch.scene import SceneGraph
from rationalrewards.sketch.small_world import SMALL_COLORS, SmallPrompt, render_small, small_scene

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


class ScalarRewardNet(nn.Module):
    """Image (3 x 32 x 32 in [-1, 1]) and prompt word ids -> one scalar."""

    def __init__(self, vocabulary: list[str], width: int = 32) -> None:
        super().__init__()
        self.vocabulary = list(vocabulary)
        self.index = {word: i + 1 for i, word in enumerate(self.vocabulary)}  # 0: unknown or padding
        self.image = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1),
            nn.SiLU(),
        )
        self.text = nn.EmbeddingBag(len(self.vocabulary) + 1, 2 * width, mode="mean", padding_idx=0)
        self.film = nn.Linear(2 * width, 4 * width)  # the prompt scales and shifts the image features
        self.head = nn.Sequential(nn.Linear(2 * width * 16, 128), nn.SiLU(), nn.Linear(128, 1))

    def word_ids(self, prompts: list[str]) -> torch.Tensor:
        from tokenizers.pre_tokenizers import Whitespace

        split = Whitespace()
        rows = [[self.index.get(w, 0) for w, _ in split.pre_tokenize_str(p.lower())] or [0] for p in prompts]
        width = max(len(r) for r in rows)
        return torch.tensor([r + [0] * (width - len(r)) for r in rows])

    def forward(self, pixels: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        features = self.image(pixels)  # (B, 2w, 4, 4)
        scale, shift = self.film(self.text(self.word_ids(prompts).to(pixels.device))).chunk(2, dim=-1)
        features = features * (1 + scale[:, :, None, None]) + shift[:, :, None, None]
        return self.head(features.flatten(1)).squeeze(-1)


def to_pixels(images: list[Any]) -> torch.Tensor:
    array = np.stack([np.asarray(i.convert("RGB")) for i in images]).astype(np.float32)
    return torch.from_numpy(array).permute(0, 3, 1, 2) / 127.5 - 1


# ------------------------------------------------------------------ data ----------------------------------------------


def flawed(scene: SceneGraph, prompt: SmallPrompt, rng: random.Random) -> SceneGraph:
    """`scene` with one flaw a generator makes: a count off by one, one or every object recoloured, or nothing."""
    kind = rng.choice(["more", "fewer", "recolor_one", "recolor_all", "blank"])
    if kind == "fewer" and prompt.count == 1:
        kind = "more"
    if kind == "more" and prompt.count == 4:
        kind = "fewer"
    other = rng.choice([c for c in SMALL_COLORS if c != prompt.color])
    if kind == "blank":
        return scene.model_copy(update={"objects": ()})
    if kind == "fewer":
        return scene.model_copy(update={"objects": scene.objects[:-1]})
    if kind == "more":
        grown = small_scene(replace(prompt, count=prompt.count + 1), scene.seed)
        return scene.model_copy(update={"objects": grown.objects})
    objects = list(scene.objects)
    targets = range(len(objects)) if kind == "recolor_all" else [rng.randrange(len(objects))]
    for k in targets:
        objects[k] = objects[k].model_copy(update={"color": other})
    return scene.model_copy(update={"objects": tuple(objects)})


def _roughen(image: Any, rng: np.random.Generator) -> object:
    from PIL import Image

    pixels = np.asarray(image).astype(np.float32) + rng.normal(0.0, rng.uniform(0, 20), (*image.size[::-1], 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def preference_pairs(
    prompts: list[SmallPrompt], per_prompt: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(preferred pixels, other pixels, prompt texts): a correct render against a flawed one of the same layout."""
    rng, noise = random.Random(f"bt-pairs:{seed}"), np.random.default_rng(seed)
    good, bad, texts = [], [], []
    for prompt in prompts:
        for k in range(per_prompt):
            scene = small_scene(prompt, seed * 7919 + k)
            good.append(_roughen(render_small(scene), noise))
            bad.append(_roughen(render_small(flawed(scene, prompt, rng)), noise))
            texts.append(prompt.text)
    return to_pixels(good), to_pixels(bad), texts


# ------------------------------------------------------------------ training ------------------------------------------


def train_scalar_reward(
    out: str | Path, train: list[SmallPrompt], held: list[SmallPrompt], settings: ScalarRewardSettings
) -> dict[str, object]:
    """Train, save to `out` (safetensors + config), and report pairwise accuracy on held-out prompts' pairs."""
    from safetensors.torch import save_file
    from tqdm.auto import tqdm

    from rationalrewards.experiments.sketch_generator import vocabulary

    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    model = ScalarRewardNet(vocabulary())
    good, bad, texts = preference_pairs(train, settings.per_prompt, settings.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate)
    generator = torch.Generator().manual_seed(settings.seed)
    losses = []
    for step in tqdm(range(settings.steps), desc="scalar reward", leave=False):
        batch = torch.randint(len(texts), (settings.batch_size,), generator=generator)
        prompts = [texts[int(i)] for i in batch]
        margin = model(good[batch], prompts) - model(bad[batch], prompts)
        loss = nn.functional.softplus(-margin).mean()  # -log sigmoid(margin)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 100 == 0:
            losses.append((step, round(float(loss.detach()), 4)))
    model.eval()
    accuracy = pair_accuracy(model, *preference_pairs(held, 8, settings.seed + 1))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / WEIGHTS))
    calibration = score_calibration(model, good, bad, texts)
    config = {"vocabulary": model.vocabulary, "width": 32, **calibration}
    (out / CONFIG).write_text(json.dumps(config, indent=1))
    return {"held_out_pair_accuracy": accuracy, "train_pairs": len(texts), "loss_curve": losses, **calibration}


@torch.no_grad()
def score_calibration(
    model: ScalarRewardNet, good: torch.Tensor, bad: torch.Tensor, texts: list[str], sample: int = 1024
) -> dict[str, float]:
    """Centre and scale of the model's raw scores over training images. A Bradley-Terry score is only defined up to
    its differences, and trained to near-zero loss its values reach the hundreds (measured: -140 to +110 over the
    shipped generator's images), where a plain sigmoid is 0 or 1 for every image of a prompt and RL sees no
    difference inside a group."""
    pick = torch.randperm(len(texts), generator=torch.Generator().manual_seed(0))[:sample]
    prompts = [texts[int(i)] for i in pick]
    scores = torch.cat([model(good[pick], prompts), model(bad[pick], prompts)])
    return {"score_center": float(scores.mean()), "score_scale": float(scores.std().clamp(min=1e-6))}


@torch.no_grad()
def pair_accuracy(model: ScalarRewardNet, good: torch.Tensor, bad: torch.Tensor, texts: list[str]) -> float:
    return float((model(good, texts) > model(bad, texts)).float().mean())


def load_scalar_reward_net(directory: str | Path) -> ScalarRewardNet:
    from safetensors.torch import load_file

    config = json.loads((Path(directory) / CONFIG).read_text())
    model = ScalarRewardNet(config["vocabulary"], width=config["width"])
    model.load_state_dict(load_file(str(Path(directory) / WEIGHTS)))
    return model.eval()


def learned_scalar_reward(directory: str | Path) -> object:
    """The trained model as a reward model: every aspect 1 + 3 sigmoid((s - centre) / scale), with the centre and
    scale of its scores on the training images (`score_calibration`)."""
    from rationalrewards.rewardmodel.backends.function import FunctionRewardModel
    from rationalrewards.rewardmodel.images import load_pil
    from rationalrewards.rewardmodel.schemas import CritiqueRequest

    model = load_scalar_reward_net(directory)
    config = json.loads((Path(directory) / CONFIG).read_text())
    if "score_scale" not in config:
        raise ValueError(f"{directory} has no score calibration; retrain it with train_scalar_reward")
    center, scale = float(config["score_center"]), float(config["score_scale"])

    def scores(request: CritiqueRequest) -> dict[str, float | None]:
        with torch.no_grad():
            raw = model(to_pixels([load_pil(request.image)]), [request.prompt])
            value = float(torch.sigmoid((raw - center) / scale)[0])
        score = round(1.0 + 3.0 * value, 4)
        return {aspect.value: score for aspect in request.task.aspects} | {"text_rendering": None}

    return FunctionRewardModel(scores, name="scalar-bradley-terry")


__all__ = [
    "ScalarRewardNet",
    "ScalarRewardSettings",
    "learned_scalar_reward",
    "load_scalar_reward_net",
    "pair_accuracy",
    "preference_pairs",
    "score_calibration",
    "train_scalar_reward",
]
