"""Perception transcripts: a sketch image's scene graph written as text, with perception noise, for text students.

A stand-in for a vision encoder. A pretrained language model (SmolLM2-135M installs offline) can learn in minutes on a
CPU to judge an image from a transcript such as

    objects: red cat (left, middle); 2 blue dogs (right, top; center, middle); text: "OPEN"; flaws: smudge

where learning to read colours, counts and positions from pixels needs hours per model (measured: a 6M-parameter VLM
trained from scratch for 20 minutes scored blank images the same as real ones). What the transcript keeps is what a
critic must perceive to judge a GenEval prompt; the noise makes perception fallible the way an encoder is, seeded by
the image, so one image always reads the same way under one setting:

- `miss`: an object is not reported;
- `extra`: an object is reported twice;
- `color`: an object's colour is misread;
- `place`: an object's position is reported one cell off on the 3x3 grid;
- `text`: a rendered text is misread (one character changed).

`PerceptionNoise.at(level)` scales one level into these rates (misses and colours at the level, the rest at half).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

from rationalrewards.sketch._vocab import COLORS
from rationalrewards.sketch.scene import SceneGraph, SceneObject, load_scene
from rationalrewards.sketch.spec import plural

_COLUMNS = ("left", "center", "right")
_ROWS = ("top", "middle", "bottom")
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class PerceptionNoise:
    """Per-object (per-text) rates of each perception error; all 0 reads the scene graph exactly."""

    miss: float = 0.0
    extra: float = 0.0
    color: float = 0.0
    place: float = 0.0
    text: float = 0.0

    def __post_init__(self) -> None:
        for rate in fields(self):
            value = getattr(self, rate.name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"perception noise {rate.name}={value} must be a probability in [0, 1]")

    @classmethod
    def at(cls, level: float) -> PerceptionNoise:
        """One knob: misses and colour confusions at `level`, extras, shifted positions and misread text at half."""
        if not 0.0 <= level <= 1.0:
            raise ValueError(f"perception noise level {level} must be in [0, 1]")
        return cls(miss=level, extra=level / 2, color=level, place=level / 2, text=level / 2)

    @property
    def level(self) -> float:
        return max(getattr(self, rate.name) for rate in fields(self))


def _cell(obj: SceneObject, scene: SceneGraph) -> tuple[int, int]:
    x, y = obj.centroid
    column = min(2, max(0, int(3 * x / max(scene.width, 1))))
    row = min(2, max(0, int(3 * y / max(scene.height, 1))))
    return column, row


def _shift(cell: tuple[int, int], rng: random.Random) -> tuple[int, int]:
    column, row = cell
    if rng.random() < 0.5:
        column = min(2, max(0, column + rng.choice((-1, 1))))
    else:
        row = min(2, max(0, row + rng.choice((-1, 1))))
    return column, row


def _misread(text: str, rng: random.Random) -> str:
    if not text:
        return text
    i = rng.randrange(len(text))
    return text[:i] + rng.choice([c for c in _LETTERS if c != text[i].upper()]) + text[i + 1 :]


def perceived_objects(scene: SceneGraph, noise: PerceptionNoise, rng: random.Random) -> list[tuple[str, str, str]]:
    """(colour, class, place) for each object as perceived, in the scene's order (a duplicate right after its
    original)."""
    seen: list[tuple[str, str, str]] = []
    for obj in scene.objects:
        if rng.random() < noise.miss:
            continue
        color = obj.color
        if rng.random() < noise.color:
            color = rng.choice([c for c in COLORS if c != obj.color])
        cell = _cell(obj, scene)
        if rng.random() < noise.place:
            cell = _shift(cell, rng)
        place = f"{_COLUMNS[cell[0]]}, {_ROWS[cell[1]]}"
        seen.append((color, obj.cls, place))
        if rng.random() < noise.extra:
            seen.append((color, obj.cls, place))
    return seen


def transcribe(scene: SceneGraph, noise: PerceptionNoise | None = None, *, seed: int = 0) -> str:
    """The transcript of one scene, as perceived under `noise` (seeded by the image and `seed`)."""
    noise = noise or PerceptionNoise()
    rng = random.Random(hashlib.sha256(f"{seed}:{scene.image_sha256 or scene.prompt}".encode()).digest())
    groups: dict[tuple[str, str], list[str]] = {}
    for color, cls, place in perceived_objects(scene, noise, rng):
        groups.setdefault((color, cls), []).append(place)
    parts = []
    for (color, cls), places in groups.items():
        name = cls if len(places) == 1 else f"{len(places)} {plural(cls)}"
        parts.append(f"{color} {name} ({'; '.join(places)})")
    line = "objects: " + ("; ".join(parts) if parts else "none")
    texts = [t.rendered for t in scene.texts if t.rendered]
    if texts:
        read = [_misread(t, rng) if rng.random() < noise.text else t for t in texts]
        line += "; text: " + ", ".join(f'"{t}"' for t in read)
    flaws = Counter(a.kind.replace("_", " ") for a in scene.artifacts)
    flaws.update(
        "cut off" for o in scene.objects if o.cut_off and not any(a.kind == "cut_off" for a in scene.artifacts)
    )
    if flaws:
        line += "; flaws: " + ", ".join(sorted(flaws))
    return line


def transcribe_image(image: str | Path, noise: PerceptionNoise | None = None, *, seed: int = 0) -> str:
    """The transcript of a sketch image file (read from its scene-graph sidecar, checked against the image)."""
    return transcribe(load_scene(image), noise, seed=seed)


PERCEPTION_KIND = "sketch-transcript"


def sketch_perception(noise: float) -> Callable[[str], str]:
    """What a text critic reads in place of a sketch image: its transcript at noise level `noise`, ending its line
    (seed 0, so a student in training and the same student served read one image the same way)."""
    perceived = PerceptionNoise.at(noise)

    def describe(image: str) -> str:
        return transcribe_image(image.removeprefix("file://"), perceived) + "\n"

    return describe


def declared_perception(model_dir: str | Path) -> Callable[[str], str] | None:
    """The perception a text student was trained with, as its `rationalrewards.json` declares it (None: a VLM)."""
    from rationalrewards.rewardmodel.prompts import PROFILE_MARKER

    marker = Path(model_dir) / PROFILE_MARKER
    if not marker.is_file():
        return None
    declared = json.loads(marker.read_text(encoding="utf-8")).get("perception")
    if not declared:
        return None
    if declared.get("kind") != PERCEPTION_KIND:
        raise ValueError(
            f"{marker}: unknown perception {declared.get('kind')!r} (this version reads {PERCEPTION_KIND})"
        )
    return sketch_perception(float(declared.get("noise", 0.0)))


__all__ = [
    "PERCEPTION_KIND",
    "PerceptionNoise",
    "declared_perception",
    "perceived_objects",
    "sketch_perception",
    "transcribe",
    "transcribe_image",
]
