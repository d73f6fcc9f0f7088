"""Scene graphs (the sidecar every sketch image carries) and ground truth against a spec.

`score_against_spec` follows GenEval's evaluation: every `include` entry needs at least `count` objects of its class
(of its colour, if one is given; relations checked for every pair with GenEval's `relative_position` rule on boxes),
and an `exclude` entry fails once `count` objects of its class are present. Requested text must be rendered exactly.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rationalrewards.agents.grading import Grade
from rationalrewards.rewardmodel.errors import InvalidImageError
from rationalrewards.rewardmodel.images import read_image_bytes
from rationalrewards.rewardmodel.schemas import ImageRef
from rationalrewards.sketch.spec import SceneSpec

SCENE_VERSION = 1
POSITION_THRESHOLD = 0.1  # GenEval's margin, as a share of the two boxes' summed sizes

Box = tuple[float, float, float, float]


class SceneObject(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    cls: str = Field(alias="class")
    color: str
    bbox: Box  # x0, y0, x1, y1 in pixels
    cut_off: bool = False  # partly outside the canvas (a visual artifact)

    @property
    def centroid(self) -> tuple[float, float]:
        return ((self.bbox[0] + self.bbox[2]) / 2, (self.bbox[1] + self.bbox[3]) / 2)


class RenderedText(BaseModel):
    model_config = ConfigDict(frozen=True)

    requested: str | None
    rendered: str
    bbox: Box


class Artifact(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["smudge", "noise", "cut_off", "blur"]
    bbox: Box
    severity: float = Field(ge=0, le=1)


class SceneGraph(BaseModel):
    """What is really in a sketch image. Written next to the PNG as `<name>.scene.json`."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["sketch_scene"] = "sketch_scene"
    version: int = SCENE_VERSION
    prompt: str
    seed: int
    width: int
    height: int
    objects: tuple[SceneObject, ...]
    texts: tuple[RenderedText, ...] = ()
    artifacts: tuple[Artifact, ...] = ()
    image_sha256: str = ""
    source_sha256: str | None = None  # for edits: the image this one was edited from
    generator_notes: tuple[str, ...] = ()  # what the generator's reading got wrong (for people; the oracle ignores it)

    def counts(self) -> Counter[str]:
        return Counter(o.cls for o in self.objects)


def sidecar_path(image_path: str | Path) -> Path:
    path = Path(image_path)
    return path.with_name(path.stem + ".scene.json")


def write_sidecar(scene: SceneGraph, image_path: str | Path) -> Path:
    from rationalrewards.plumbing.files import atomic_write_text

    return atomic_write_text(sidecar_path(image_path), scene.model_dump_json(indent=1))


class NoSceneError(InvalidImageError):
    """An image with no scene graph of its own beside it (made elsewhere, inlined, or carrying a foreign sidecar): not
    one the sketch world can judge. Critics abstain on it; the image itself may be perfectly readable."""


def load_scene(image: ImageRef | str | Path) -> SceneGraph:
    """The scene graph beside an image, checked against the image's bytes (a stale or foreign sidecar is refused)."""
    uri = image.uri if isinstance(image, ImageRef) else str(image)
    if uri.startswith("data:"):
        raise NoSceneError(
            "the sketch world reads (and edits) only its own images: an image file with its .scene.json sidecar, "
            "not a data URL"
        )
    path = sidecar_path(uri.removeprefix("file://"))
    if not path.exists():
        raise NoSceneError(
            f"no scene-graph sidecar {path.name} next to {Path(uri).name}: the sketch world judges and edits only "
            "images made by the sketch generator (`rationalrewards sketch render`), which writes one"
        )
    try:
        scene = SceneGraph.model_validate_json(path.read_text())
    except ValueError as e:
        raise InvalidImageError(f"{path} is not a valid sketch scene graph ({e.__class__.__name__})") from e
    if scene.version != SCENE_VERSION:
        raise InvalidImageError(
            f"{path} was written by scene format v{scene.version}; this version reads v{SCENE_VERSION}"
        )
    digest = image.sha256 if isinstance(image, ImageRef) else hashlib.sha256(read_image_bytes(uri)).hexdigest()
    if scene.image_sha256 != digest:
        raise NoSceneError(f"{path.name} does not belong to {Path(uri).name} (image sha256 mismatch)")
    return scene


# ------------------------------------------------------------------ GenEval-style ground truth --------------------


def relative_position(a: SceneObject, b: SceneObject) -> set[str]:
    """GenEval's rule: relations of a to b from box centres, after discounting a margin of both boxes' sizes."""
    (ax, ay), (bx, by) = a.centroid, b.centroid
    dims_a = (a.bbox[2] - a.bbox[0], a.bbox[3] - a.bbox[1])
    dims_b = (b.bbox[2] - b.bbox[0], b.bbox[3] - b.bbox[1])
    offset = (ax - bx, ay - by)
    revised = [
        max(abs(o) - POSITION_THRESHOLD * (da + db), 0.0) * math.copysign(1, o)
        for o, da, db in zip(offset, dims_a, dims_b, strict=True)
    ]
    if all(abs(r) < 1e-3 for r in revised):
        return set()
    norm = math.hypot(*offset)
    dx, dy = revised[0] / norm, revised[1] / norm
    relations = set()
    if dx < -0.5:
        relations.add("left of")
    if dx > 0.5:
        relations.add("right of")
    if dy < -0.5:
        relations.add("above")
    if dy > 0.5:
        relations.add("below")
    return relations


def _plural(cls: str, n: int) -> str:
    from rationalrewards.sketch.spec import plural

    return cls if n == 1 else plural(cls)


def score_against_spec(scene: SceneGraph, spec: SceneSpec) -> Grade:
    errors: list[str] = []
    groups: list[list[SceneObject] | None] = []
    for req in spec.include:
        of_class = [o for o in scene.objects if o.cls == req.cls]
        found = [o for o in of_class if req.color is None or o.color == req.color]
        matched = True
        if len(of_class) < req.count:
            errors.append(f"expected {req.count} {_plural(req.cls, req.count)}, found {len(of_class)}")
            matched = False
        elif req.color is not None and len(found) < req.count:
            colors = ", ".join(sorted({o.color for o in of_class}))
            errors.append(f"expected {req.count} {req.color} {_plural(req.cls, req.count)}, found them {colors}")
            matched = False
        if matched and req.position is not None:
            relation, index = req.position
            targets = groups[index] if index < len(groups) else None
            if not targets:
                errors.append(
                    f"cannot check '{req.cls} {relation} {spec.include[index].cls}': the reference is missing"
                )
                matched = False
            elif not all(relation in relative_position(o, t) for o in found[: req.count] for t in targets):
                actual = set().union(*(relative_position(o, t) for o in found[: req.count] for t in targets)) or {
                    "level with"
                }
                errors.append(
                    f"expected the {req.cls} {relation} the {spec.include[index].cls}, found it {' and '.join(sorted(actual))}"
                )
                matched = False
        groups.append(found[: req.count] if matched else None)
    counts = scene.counts()
    for req in spec.exclude:
        if counts[req.cls] >= req.count:
            errors.append(
                f"expected fewer than {req.count} {_plural(req.cls, req.count)}, found {counts[req.cls]}"
                if req.count > 1
                else f"expected no {req.cls}, found {counts[req.cls]}"
            )
    rendered = [t.rendered for t in scene.texts]
    for text in spec.text:
        if text not in rendered:
            shown = f"'{rendered[0]}'" if rendered else "no text"
            errors.append(f"expected the text '{text}', found {shown}")
    return Grade(correct=not errors, tag=spec.tag, errors=tuple(errors))
