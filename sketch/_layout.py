"""Drawing primitives of the sketch world, shared by the text-to-image generator and the editor: where objects go
(non-overlapping boxes, relation halves and bands), the colour an unnamed object gets, realistic misspellings, and the
seed-only visual artifacts."""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

from rationalrewards.sketch._seeding import seeded_rng as _rng
from rationalrewards.sketch._vocab import COLORS
from rationalrewards.sketch.failures import FailureModel
from rationalrewards.sketch.scene import Artifact, RenderedText, SceneObject

TEXT_CARRIERS = ("sign", "banner", "poster", "board", "billboard", "label", "plaque", "signboard", "placard", "card")
Box = tuple[float, float, float, float]


def natural_color(cls: str) -> str:
    """The colour an object gets when the prompt names none (stable per class)."""
    names = list(COLORS)
    return names[int(hashlib.sha256(cls.encode()).hexdigest(), 16) % len(names)]


@dataclass(frozen=True)
class Planned:
    cls: str
    count: int
    color: str
    relation: tuple[str, int] | None = None  # relation to another planned object, by index


def other_color(color: str, rng: random.Random) -> str:
    return rng.choice([c for c in COLORS if c != color])


def misspell(text: str, rng: random.Random) -> str:
    """One or two realistic slips: a dropped, doubled, swapped or replaced letter."""
    if not text:
        return text
    chars = list(text)
    for _ in range(1 if len(text) < 8 else 2):
        i = rng.randrange(len(chars))
        kind = rng.choice(("drop", "double", "swap", "replace"))
        if kind == "drop" and len(chars) > 1:
            del chars[i]
        elif kind == "double":
            chars.insert(i, chars[i])
        elif kind == "swap" and i + 1 < len(chars) and chars[i] != chars[i + 1]:
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        else:
            alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if chars[i].isupper() else "abcdefghijklmnopqrstuvwxyz"
            chars[i] = rng.choice([c for c in alphabet if c != chars[i]] or ["X"])
    result = "".join(chars)
    return result if result != text else text[:-1] + ("X" if text[-1] != "X" else "Y")


def _size_for(total: int, side: int) -> int:
    return int(max(22, min(84, side / (math.sqrt(max(total, 1)) * 1.55 + 0.8))))


def _overlaps(box: Box, placed: list[Box], gap: float = 3) -> bool:
    return any(
        not (box[2] + gap <= p[0] or p[2] + gap <= box[0] or box[3] + gap <= p[1] or p[3] + gap <= box[1])
        for p in placed
    )


def place(
    rng: random.Random,
    w: int,
    h: int,
    region: tuple[float, float, float, float],
    placed: list[Box],
    band: tuple[str, float] | None = None,
) -> Box:
    """A non-overlapping box inside `region`; `band` keeps the centre near a line (for left/right or above/below)."""
    x0, y0, x1, y1 = region
    box: Box = region
    for _ in range(200):
        if band is not None and band[0] == "y":
            cy = band[1] + rng.uniform(-h * 0.35, h * 0.35)
            cx = rng.uniform(x0 + w / 2, x1 - w / 2) if x1 - x0 > w else (x0 + x1) / 2
        elif band is not None:
            cx = band[1] + rng.uniform(-w * 0.35, w * 0.35)
            cy = rng.uniform(y0 + h / 2, y1 - h / 2) if y1 - y0 > h else (y0 + y1) / 2
        else:
            cx = rng.uniform(x0 + w / 2, x1 - w / 2) if x1 - x0 > w else (x0 + x1) / 2
            cy = rng.uniform(y0 + h / 2, y1 - h / 2) if y1 - y0 > h else (y0 + y1) / 2
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        if not _overlaps(box, placed):
            return box
    return box  # no free spot after 200 tries: the last one, overlapping (a crowded scene)


def layout(
    objects: list[Planned], texts: list[str], size: tuple[int, int], rng: random.Random
) -> tuple[list[SceneObject], list[RenderedText]]:
    width, height = size
    margin = 6
    full: Box = (margin, margin, width - margin, height - margin)
    total = sum(o.count for o in objects) + (1 if texts and not any(o.cls in TEXT_CARRIERS for o in objects) else 0)
    side = _size_for(total, min(width, height))
    regions: dict[int, Box] = {i: full for i in range(len(objects))}
    bands: dict[int, tuple[str, float]] = {}
    for i, obj in enumerate(objects):
        if obj.relation is None or obj.relation[1] >= len(objects):
            continue
        rel, ref = obj.relation
        mid_x, mid_y = width / 2, height / 2
        halves = {
            "left of": (
                (margin, margin, mid_x - 4, height - margin),
                (mid_x + 4, margin, width - margin, height - margin),
            ),
            "right of": (
                (mid_x + 4, margin, width - margin, height - margin),
                (margin, margin, mid_x - 4, height - margin),
            ),
            "above": (
                (margin, margin, width - margin, mid_y - 4),
                (margin, mid_y + 4, width - margin, height - margin),
            ),
            "below": (
                (margin, mid_y + 4, width - margin, height - margin),
                (margin, margin, width - margin, mid_y - 4),
            ),
        }[rel]
        regions[i], regions[ref] = halves
        axis = "y" if rel in ("left of", "right of") else "x"
        line = rng.uniform(height * 0.35, height * 0.65) if axis == "y" else rng.uniform(width * 0.35, width * 0.65)
        bands[i] = bands[ref] = (axis, line)
    placed: list[Box] = []
    scene_objects: list[SceneObject] = []
    rendered_texts: list[RenderedText] = []
    for i, obj in enumerate(objects):
        carrier = obj.cls in TEXT_CARRIERS and bool(texts)
        w, h = (min(width - 2 * margin, side * 2.2), side * 0.9) if carrier else (side, side)
        band = bands.get(i) if obj.count <= 2 else None
        for _ in range(obj.count):
            box = place(rng, int(w), int(h), regions[i], placed, band)
            placed.append(box)
            scene_objects.append(SceneObject(cls=obj.cls, color=obj.color, bbox=tuple(round(v, 1) for v in box)))
            if carrier and texts and len(rendered_texts) < len(texts):
                rendered_texts.append(RenderedText(requested=None, rendered=texts[len(rendered_texts)], bbox=box))
    for text in texts[len(rendered_texts) :]:  # no carrier object: a banner
        w, h = min(width - 2 * margin, 30 + 11 * len(text)), side * 0.8
        box = place(rng, int(w), int(h), full, placed)
        placed.append(box)
        rendered_texts.append(RenderedText(requested=None, rendered=text, bbox=tuple(round(v, 1) for v in box)))
    return scene_objects, rendered_texts


def artifacts_for_seed(seed: int, size: tuple[int, int], model: FailureModel) -> list[Artifact]:
    """Visual artifacts depend on the seed only: a new prompt never fixes them, a new seed may."""
    rng = _rng("artifacts", seed)
    width, height = size
    found = []
    for kind, p in (("smudge", model.smudge), ("noise", model.noise), ("blur", model.blur)):
        roll, severity = rng.random(), rng.uniform(0.4, 1.0)
        x, y = rng.uniform(0, width * 0.7), rng.uniform(0, height * 0.7)
        w, h = rng.uniform(width * 0.15, width * 0.3), rng.uniform(height * 0.15, height * 0.3)
        if roll < p:
            found.append(
                Artifact(
                    kind=kind,
                    bbox=(round(x, 1), round(y, 1), round(min(width, x + w), 1), round(min(height, y + h), 1)),
                    severity=round(severity, 2),
                )
            )
    if rng.random() < model.cut_off:
        found.append(Artifact(kind="cut_off", bbox=(0, 0, 0, 0), severity=round(rng.uniform(0.4, 0.9), 2)))
    return found


def apply_cut_off(
    objects: list[SceneObject], artifacts: list[Artifact], seed: int, size: tuple[int, int]
) -> tuple[list[SceneObject], list[Artifact]]:
    cut = next((a for a in artifacts if a.kind == "cut_off"), None)
    if cut is None or not objects:
        return objects, [a for a in artifacts if a.kind != "cut_off"]
    rng = _rng("cut_off", seed)
    i = rng.randrange(len(objects))
    obj = objects[i]
    x0, y0, x1, y1 = obj.bbox
    w = x1 - x0
    # Slide it against the nearer vertical edge so part of it leaves the canvas (its centre stays inside).
    shift = -(x0 + w * cut.severity * 0.5) if (x0 + x1) / 2 < size[0] / 2 else (size[0] - x1 + w * cut.severity * 0.5)
    box = (round(x0 + shift, 1), y0, round(x1 + shift, 1), y1)
    objects = objects[:i] + [obj.model_copy(update={"bbox": box, "cut_off": True})] + objects[i + 1 :]
    artifacts = [a for a in artifacts if a.kind != "cut_off"] + [
        Artifact(kind="cut_off", bbox=box, severity=cut.severity)
    ]
    return objects, artifacts
