"""Pixel perception: read a sketch image's pixels into a scene graph, and a critic that judges what it perceived.

The sketch oracle reads the scene graph a generator wrote beside its image. A trained image generator writes no scene
graph, so judging its images needs a perception that reads pixels: pixels far from the background are foreground, a
3x3 majority vote removes speckle and fills pinholes, and each 8-connected foreground component large enough to be an
object is one, its colour the GenEval colour nearest the median of its core pixels (the edges mix with the background).
Colours, counts and centroids give GenEval's colour, count and position checks; foreground that belongs to no object is
speckle, reported as pixel noise. Objects that touch are read as one, as a person counting them might.

Object classes are not read from the pixels: at 32 pixels a silhouette is a handful of pixels. Each perceived object
is given the class of the requested object it fits (the one asking for its colour, or the one whose class is drawn in
that colour when the request names none), so the judgement is about colours, counts and positions, which the pixels
do carry.

`PixelCritic` is the sketch oracle's critique writer over perceived instead of true facts: a non-privileged critic
whose errors are real perception errors, and the ground-truth judge of generated images in the reward-hacking
experiment (its own accuracy on true renders is measured by `perception_accuracy`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rationalrewards.rewardmodel.images import load_pil
from rationalrewards.rewardmodel.schemas import CritiqueRequest, ImageRef, Task
from rationalrewards.sketch._layout import natural_color
from rationalrewards.sketch._vocab import BACKGROUND, COLORS
from rationalrewards.sketch.oracle import Judgement, SketchOracle
from rationalrewards.sketch.scene import Artifact, SceneGraph, SceneObject
from rationalrewards.sketch.spec import SceneSpec, parse_scene_spec

_COLOR_NAMES: tuple[str, ...] = tuple(COLORS)
_PALETTE = np.array(list(COLORS.values()), dtype=np.float32)
_BACKGROUND = np.array(BACKGROUND, dtype=np.float32)
# A pixel farther than this (RGB distance) from the background is foreground. White, the colour nearest the
# background, is 89 away; 45 is half of that, and it is applied to a smoothed image (see `perceive_pixels`).
FOREGROUND_DISTANCE = 45.0
MIN_OBJECT_SHARE = 0.005  # a component under 0.5% of the canvas (5 pixels at 32 px) is speckle, not an object
# A pixel more than 100 from its neighbourhood's median is speckle; over 4% of the canvas is reported as pixel noise.
# Measured on true renders: 0.7% on average (silhouette corners), 2.3% at the 95th percentile; 8% random pixels: 7.7%.
SPECKLE_DEVIATION = 100.0
SPECKLE_ARTIFACT_SHARE = 0.04


@dataclass(frozen=True)
class Blob:
    """One perceived object: its colour, pixel count and bounding box (x0, y0, x1, y1, exclusive ends)."""

    color: str
    area: int
    bbox: tuple[float, float, float, float]


@dataclass(frozen=True)
class Perceived:
    blobs: tuple[Blob, ...]
    speckle_share: float  # the canvas share of pixels far from their neighbourhood's median
    width: int
    height: int


def _median3(rgb: np.ndarray) -> np.ndarray:
    """The per-channel median of each pixel's 3x3 neighbourhood."""
    h, w = rgb.shape[:2]
    padded = np.pad(rgb, ((1, 1), (1, 1), (0, 0)), mode="edge")
    return np.median(np.stack([padded[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)]), axis=0)


def majority_filter(mask: np.ndarray) -> np.ndarray:
    """Each pixel of a boolean mask takes the majority of its 3x3 neighbourhood: removes single-pixel speckle and
    fills pinholes without moving an object's edge by more than a pixel."""
    h, w = mask.shape
    padded = np.pad(mask.astype(np.int8), 1, mode="edge")
    votes = sum(padded[dy : dy + h, dx : dx + w].astype(np.int16) for dy in range(3) for dx in range(3))
    return np.asarray(votes >= 5)


def components(mask: np.ndarray) -> list[np.ndarray]:
    """The 8-connected components of a boolean mask, each as an array of (y, x) pixel coordinates."""
    seen = np.zeros_like(mask, dtype=bool)
    h, w = mask.shape
    found = []
    for start in zip(*np.nonzero(mask), strict=True):
        if seen[start]:
            continue
        stack, pixels = [start], []
        seen[start] = True
        while stack:
            y, x = stack.pop()
            pixels.append((y, x))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        stack.append((ny, nx))
        found.append(np.array(pixels))
    return found


def nearest_color(rgb: np.ndarray) -> str:
    """The GenEval colour nearest an RGB value."""
    return _COLOR_NAMES[int(np.linalg.norm(_PALETTE - rgb, axis=-1).argmin())]


def _object_color(rgb: np.ndarray, distance: np.ndarray, pixels: np.ndarray) -> str:
    """A component's colour, read from its core: the half of its pixels farthest from the background (edges mix
    with the background and would pull a red object towards pink), their median RGB, nearest palette colour."""
    values, far = rgb[pixels[:, 0], pixels[:, 1]], distance[pixels[:, 0], pixels[:, 1]]
    core = values[far >= np.median(far)]
    return nearest_color(np.median(core, axis=0))


def perceive_pixels(image: object) -> Perceived:
    """The objects in an image (a PIL image or an array), read from its pixels alone: foreground pixels (far from
    the background), a majority vote against speckle, 8-connected components as objects."""
    rgb = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image).astype(np.float32)
    h, w = rgb.shape[:2]
    # Distances on a 3x3 median of the image: it removes isolated wrong pixels and shrinks Gaussian noise, while an
    # object's edge stays where it was (unsmoothed, a third of the background crossed the threshold at noise 25; a
    # mean filter spread each speckle pixel into a blob).
    smooth = _median3(rgb)
    distance = np.linalg.norm(smooth - _BACKGROUND, axis=-1)
    raw = distance > FOREGROUND_DISTANCE
    foreground = majority_filter(raw)
    min_area = max(3, round(MIN_OBJECT_SHARE * h * w))
    blobs = []
    for pixels in components(foreground):
        if len(pixels) < min_area:
            continue
        ys, xs = pixels[:, 0], pixels[:, 1]
        bbox = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
        blobs.append(Blob(color=_object_color(rgb, distance, pixels), area=len(pixels), bbox=bbox))
    blobs.sort(key=lambda b: (b.bbox[1], b.bbox[0]))
    speckle = float((np.linalg.norm(rgb - smooth, axis=-1) > SPECKLE_DEVIATION).mean())
    return Perceived(blobs=tuple(blobs), speckle_share=speckle, width=w, height=h)


def _color_distance(a: str, b: str) -> float:
    return float(np.linalg.norm(np.subtract(COLORS[a], COLORS[b])))


def assign_classes(blobs: Sequence[Blob], spec: SceneSpec) -> list[SceneObject]:
    """Perceived blobs as scene objects of the requested classes. A blob goes to the requested object asking for its
    colour; else to one with no colour asked whose class is drawn in that colour; else (a wrong colour) to the
    requested object whose colour is nearest, so "three red cars" drawn with one blue car reads as a blue car."""
    include = list(spec.include)
    if not include:
        return []
    wanted = [o.color or natural_color(o.cls) for o in include]
    objects = []
    for blob in blobs:
        exact = [i for i, o in enumerate(include) if o.color == blob.color]
        natural = [i for i, o in enumerate(include) if o.color is None and natural_color(o.cls) == blob.color]
        options = exact or natural or sorted(range(len(include)), key=lambda i: _color_distance(wanted[i], blob.color))
        objects.append(SceneObject(cls=include[options[0]].cls, color=blob.color, bbox=blob.bbox))
    return objects


def perceived_scene(image: object, prompt: str, *, sha256: str = "") -> SceneGraph:
    """The scene graph a pixel reader sees in `image` for `prompt` (objects, and speckle as a noise artifact)."""
    seen = perceive_pixels(image)
    artifacts: tuple[Artifact, ...] = ()
    if seen.speckle_share > SPECKLE_ARTIFACT_SHARE:
        severity = min(1.0, seen.speckle_share / (4 * SPECKLE_ARTIFACT_SHARE))
        artifacts = (Artifact(kind="noise", bbox=(0, 0, seen.width, seen.height), severity=round(severity, 2)),)
    return SceneGraph(
        prompt=prompt,
        seed=0,
        width=seen.width,
        height=seen.height,
        objects=tuple(assign_classes(seen.blobs, parse_scene_spec(prompt))),
        artifacts=artifacts,
        image_sha256=sha256,
    )


class PixelCritic(SketchOracle):
    """The sketch oracle's critique writer over what `perceived_scene` reads from the pixels: text-to-image critiques
    and comparisons for any image (no scene-graph sidecar needed). Editing needs object identities the pixels of a
    small image do not carry, so edit requests are refused with a clear error."""

    def __init__(self, *, name: str = "sketch-pixel-critic", **knobs: Any) -> None:
        super().__init__(name=name, **knobs)

    def judge(self, request: CritiqueRequest) -> Judgement:
        if request.task is Task.edit:  # refused before the instruction is read as a text-to-image prompt
            self._source_scene(request)
        return super().judge(request)

    def scene_for(self, image: ImageRef | str, prompt: str) -> SceneGraph:
        ref = image if isinstance(image, ImageRef) else None
        return perceived_scene(load_pil(image), prompt, sha256=ref.sha256 if ref is not None else "")

    def _source_scene(self, request: object) -> SceneGraph:
        raise NotImplementedError("the pixel critic judges text-to-image requests only; edit requests need the oracle")


class PixelGrader:
    """Ground truth for generated small-world images (a `Grader`): the perceived scene against the row's GenEval spec
    (or the spec read from its prompt). Text-to-image only; a prompt the sketch world cannot read has no grade."""

    name = "sketch-pixels"

    def grade(self, row: Any, prompt: str, image: ImageRef, source_image: ImageRef | None) -> Any:
        from rationalrewards.sketch.scene import score_against_spec
        from rationalrewards.sketch.spec import SceneSpecError

        if source_image is not None:
            return None
        try:
            spec = SceneSpec.from_geneval(row.geneval()) if row.include is not None else parse_scene_spec(row.prompt)
        except SceneSpecError:
            return None
        return score_against_spec(perceived_scene(load_pil(image), row.prompt), spec)


def _noisy(image: Any, rng: np.random.Generator) -> object:
    from PIL import Image

    pixels = np.asarray(image).astype(np.float32) + rng.normal(0.0, 25.0, (*image.size[::-1], 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _speckled(image: object, rng: np.random.Generator) -> object:
    from PIL import Image

    pixels = np.asarray(image).copy()
    hit = rng.random(pixels.shape[:2]) < 0.08
    pixels[hit] = rng.integers(0, 256, (int(hit.sum()), 3))
    return Image.fromarray(pixels)


def _soft(scene: SceneGraph) -> object:
    from PIL import Image

    from rationalrewards.sketch.small_world import render_small

    big = scene.model_copy(
        update={
            "width": scene.width * 4,
            "height": scene.height * 4,
            "objects": tuple(o.model_copy(update={"bbox": tuple(4 * v for v in o.bbox)}) for o in scene.objects),
        }
    )
    return render_small(big).resize((scene.width, scene.height), Image.Resampling.BILINEAR)


CORRUPTIONS: tuple[str, ...] = ("none", "noise", "speckle", "soft")


def perception_accuracy(samples: int = 400, seed: int = 0, corruption: str = "none") -> dict[str, float]:
    """The perception's accuracy on small-world renders whose truth is known: per image, whether every object's colour
    is read right (`color`), whether the object count is right (`count`), and both (`scene`). `corruption` degrades
    the renders the way a generator's images differ from them: `noise` (Gaussian, 25 per channel), `speckle` (8% of
    pixels random), `soft` (drawn at 4x and scaled down: edges mix with the background)."""
    import random

    from rationalrewards.sketch.small_world import all_prompts, render_small, small_scene

    if corruption not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {corruption!r}; choose one of {', '.join(CORRUPTIONS)}")
    rng = random.Random(f"perception-accuracy:{seed}")
    noise = np.random.default_rng(seed)
    prompts = all_prompts()
    right = {"color": 0, "count": 0, "scene": 0}
    for k in range(samples):
        prompt = rng.choice(prompts)
        scene = small_scene(prompt, seed * 100_003 + k)
        image = _soft(scene) if corruption == "soft" else render_small(scene)
        if corruption == "noise":
            image = _noisy(image, noise)
        elif corruption == "speckle":
            image = _speckled(image, noise)
        blobs = perceive_pixels(image).blobs
        color_ok = bool(blobs) and all(b.color == prompt.color for b in blobs)
        count_ok = len(blobs) == prompt.count
        right["color"] += color_ok
        right["count"] += count_ok
        right["scene"] += color_ok and count_ok
    return {name: hits / samples for name, hits in right.items()}


__all__ = [
    "CORRUPTIONS",
    "Blob",
    "Perceived",
    "PixelCritic",
    "PixelGrader",
    "assign_classes",
    "nearest_color",
    "perceive_pixels",
    "perceived_scene",
    "perception_accuracy",
]
