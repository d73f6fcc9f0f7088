"""The 32-pixel sketch world: what a tiny image generator is trained on and a pixel-reading critic judges.

The full sketch world draws 256-pixel scenes whose glyphs carry inner patterns and outlines. At 32 pixels those details
are below a pixel's worth: they would only blur into a colour mixture. This world keeps what a 32-pixel image can hold
exactly (a prompt's colour, count and placement) and draws each object as a flat silhouette of one of the ten GenEval
colours on the sketch background. It has eight classes whose silhouettes stay distinct at that size, counts 1-4, and
GenEval's phrasing ("a photo of three red cars"), so `parse_scene_spec` reads every prompt exactly. Scenes are
`SceneGraph`s like the full world's, so the same scorer and critique writer apply.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from rationalrewards.sketch._render import _mask, glyph_of
from rationalrewards.sketch._vocab import BACKGROUND, COLORS
from rationalrewards.sketch.scene import SceneGraph, SceneObject
from rationalrewards.sketch.spec import render_prompt

SMALL_SIZE = 32
# Eight COCO classes with plain glyphs and silhouettes that stay apart at 9-14 pixels (no hexagon vs circle).
SMALL_CLASSES: tuple[str, ...] = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "bus",
    "train",
    "boat",
    "traffic light",
)
SMALL_COLORS: tuple[str, ...] = tuple(COLORS)
SMALL_COUNTS: tuple[int, ...] = (1, 2, 3, 4)
_SIDE_FOR_COUNT = {1: 14, 2: 11, 3: 10, 4: 9}  # object side in pixels: four objects still fit with gaps
_MARGIN = 1


@dataclass(frozen=True)
class SmallPrompt:
    """One prompt of the small world: `count` objects of `cls`, all `color`."""

    color: str
    cls: str
    count: int

    @property
    def text(self) -> str:
        from rationalrewards.sketch.spec import ObjectSpec, SceneSpec

        tag = "counting" if self.count > 1 else "colors"
        spec = SceneSpec(tag=tag, include=[ObjectSpec(cls=self.cls, count=self.count, color=self.color)])
        return render_prompt(spec)


def all_prompts() -> list[SmallPrompt]:
    """Every (colour, class, count): 10 x 8 x 4 = 320 prompts."""
    return [SmallPrompt(c, k, n) for c in SMALL_COLORS for k in SMALL_CLASSES for n in SMALL_COUNTS]


def split_prompts(held_out_share: float = 0.2, seed: int = 0) -> tuple[list[SmallPrompt], list[SmallPrompt]]:
    """(train, held out), split by colour-class pair: a held-out pair's colour and class are each seen in training,
    never together (so held-out accuracy measures composition, not memory)."""
    pairs = sorted({(p.color, p.cls) for p in all_prompts()})
    rng = random.Random(f"small-split:{seed}")
    rng.shuffle(pairs)
    held = set(pairs[: round(len(pairs) * held_out_share)])
    prompts = all_prompts()
    return [p for p in prompts if (p.color, p.cls) not in held], [p for p in prompts if (p.color, p.cls) in held]


def small_scene(prompt: SmallPrompt, seed: int, size: int = SMALL_SIZE) -> SceneGraph:
    """The true scene for `prompt` with layout `seed`. One object goes anywhere; several each take a different
    quadrant, jittered inside it, so objects never touch (a random fit failed for four objects at 32 pixels and made
    merged blobs the perception would rightly count as one)."""
    rng = random.Random(f"small-scene:{prompt.text}:{seed}")
    side = round(_SIDE_FOR_COUNT[prompt.count] * size / SMALL_SIZE)
    if prompt.count == 1:
        cells = [(_MARGIN, _MARGIN, size - _MARGIN)]
    else:
        half = size // 2
        corners = [(0, 0), (half, 0), (0, half), (half, half)]
        cells = [(x + _MARGIN, y + _MARGIN, x + half - _MARGIN) for x, y in rng.sample(corners, prompt.count)]
    objects = []
    for x, y, end in cells:
        room = end - x - side  # the cell's free play along each axis
        x0, y0 = x + rng.randint(0, room), y + rng.randint(0, room)
        box = (float(x0), float(y0), float(x0 + side), float(y0 + side))
        objects.append(SceneObject(cls=prompt.cls, color=prompt.color, bbox=box))
    return SceneGraph(prompt=prompt.text, seed=seed, width=size, height=size, objects=tuple(objects))


def render_small(scene: SceneGraph) -> Any:
    """The RGB image of a small-world scene: flat silhouettes on the sketch background."""
    from PIL import Image

    image = Image.new("RGB", (scene.width, scene.height), BACKGROUND)
    for obj in scene.objects:
        x0, y0, x1, y1 = (round(v) for v in obj.bbox)
        w, h = x1 - x0, y1 - y0
        silhouette, _ = glyph_of(obj.cls)
        image.paste(Image.new("RGB", (w, h), COLORS[obj.color]), (x0, y0), _mask(silhouette, (w, h)))
    return image


__all__ = [
    "SMALL_CLASSES",
    "SMALL_COLORS",
    "SMALL_COUNTS",
    "SMALL_SIZE",
    "SmallPrompt",
    "all_prompts",
    "render_small",
    "small_scene",
    "split_prompts",
]
