"""`SketchGenerator`: an imperfect text-to-image and editing "model" with ground truth (DESIGN.md, "The sketch world").

Deterministic given (prompt, seed): it reads the prompt, misreads it per `FailureModel`, lays the scene out, renders
it with Pillow, and writes a content-addressed PNG plus its scene-graph sidecar (`<sha256>.scene.json`).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from rationalrewards.agents.generator import GeneratedImage, batch_sources
from rationalrewards.agents.sketch.failures import FailureModel
from rationalrewards.agents.sketch.seeding import seeded_rng as _rng
from rationalrewards.agents.sketch.render import render_scene
from rationalrewards.agents.sketch.scene import Artifact, RenderedText, SceneGraph, SceneObject, load_scene, write_sidecar
from rationalrewards.agents.sketch.spec import PromptReading, plural, read_prompt_leniently
from rationalrewards.agents.sketch.vocab import COLORS, INVERSE_RELATION
from rationalrewards.rewardmodel.images import image_ref_from_pil
from rationalrewards.rewardmodel.schemas import ImageRef

TEXT_CARRIERS = ("sign", "banner", "poster", "board", "billboard", "label", "plaque", "signboard", "placard", "card")



def natural_color(cls: str) -> str:
    """The colour an object gets when the prompt names none (stable per class)."""
    names = list(COLORS)
    return names[int(hashlib.sha256(cls.encode()).hexdigest(), 16) % len(names)]


@dataclass(frozen=True)
class _Planned:
    cls: str
    count: int
    color: str
    relation: tuple[str, int] | None = None  # relation to another planned object, by index


def _other_color(color: str, rng: random.Random) -> str:
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


def plan_scene(reading: PromptReading, rng: random.Random, model: FailureModel) -> tuple[list[_Planned], list[str], list[str]]:
    """Apply the failure model to a reading: (objects to draw, texts to draw, notes on what went wrong)."""
    spec = reading.spec
    notes: list[str] = []
    objects = [
        _Planned(cls=o.cls, count=o.count, color=o.color or natural_color(o.cls), relation=o.position)
        for o in spec.include
    ]
    explicit = list(reading.explicit)
    texts = list(spec.text)
    if not objects:
        return [], texts, notes

    def miscount(i: int) -> None:
        obj = objects[i]
        new = obj.count - 1 if obj.count > 1 and rng.random() < 0.6 else obj.count + 1
        notes.append(f"drew {new} instead of {obj.count} {plural(obj.cls)}")
        objects[i] = replace(obj, count=new)

    def recolor(i: int) -> None:
        obj = objects[i]
        new = _other_color(obj.color, rng)
        notes.append(f"painted the {obj.cls} {new} instead of {obj.color}")
        objects[i] = replace(obj, color=new)

    def swap_colors(i: int, j: int) -> None:
        notes.append(f"swapped the colours of the {objects[i].cls} and the {objects[j].cls}")
        objects[i], objects[j] = replace(objects[i], color=objects[j].color), replace(objects[j], color=objects[i].color)

    # The object named last in the prompt: for "A left of B" that is B, the reference (listed first in the spec).
    last = 0 if any(o.relation for o in objects) else len(objects) - 1

    for i, obj in enumerate(spec.include):
        if rng.random() < model.count_error(obj.count, explicit[i].count):
            miscount(i)
    colored = [i for i, o in enumerate(spec.include) if o.color]
    for i in colored:
        if rng.random() < model.rate(model.color_miss, explicit[i].color):
            recolor(i)
    if len(colored) >= 2 and rng.random() < model.rate(model.color_swap, all(explicit[i].color for i in colored)):
        swap_colors(colored[0], colored[1])
    relation_state = "kept"
    subject = next((i for i, o in enumerate(objects) if o.relation), None)
    if subject is not None:
        placed_explicitly = explicit[subject].position
        roll = rng.random()
        if roll < model.rate(model.relation_flipped, placed_explicitly):
            relation_state = "flipped"
        elif roll < model.rate(model.relation_flipped + model.relation_ignored, placed_explicitly):
            relation_state = "ignored"
    if texts and rng.random() < model.text_error(texts[0], reading.text_explicit):
        notes.append(f"misspelt the text '{texts[0]}'")
        texts[0] = misspell(texts[0], rng)
    dropped = None
    if len(objects) >= 2 and rng.random() < model.rate(model.drop_last, explicit[last].count):
        dropped = last

    if rng.random() < model.floor:  # irreducible: one more error whatever the prompt says
        options = ["count"] + (["color"] if colored else []) + (["relation"] if subject is not None else [])
        options += ["text"] if texts else []
        options += ["drop"] if len(objects) >= 2 else []
        choice = rng.choice(options)
        if choice == "count":
            miscount(rng.randrange(len(objects)))
        elif choice == "color":
            recolor(rng.choice(colored))
        elif choice == "relation":
            relation_state = "flipped"
        elif choice == "text":
            notes.append(f"misspelt the text '{texts[0]}'")
            texts[0] = misspell(texts[0], rng)
        else:
            dropped = last

    if subject is not None and relation_state != "kept":
        rel, ref = objects[subject].relation  # type: ignore[misc]
        if relation_state == "flipped":
            notes.append(f"placed the {objects[subject].cls} {INVERSE_RELATION[rel]} the {objects[ref].cls} instead of {rel}")
            objects[subject] = replace(objects[subject], relation=(INVERSE_RELATION[rel], ref))
        else:
            notes.append(f"ignored '{rel}' and placed the objects anywhere")
            objects[subject] = replace(objects[subject], relation=None)
    if dropped is not None:
        notes.append(f"left out the {objects[dropped].cls}")
        if subject is not None and subject != dropped:
            objects[subject] = replace(objects[subject], relation=None)
        objects = [o for k, o in enumerate(objects) if k != dropped]
    return objects, texts, notes


# ------------------------------------------------------------------ layout ----------------------------------------

def _size_for(total: int, side: int) -> int:
    return int(max(22, min(84, side / (math.sqrt(max(total, 1)) * 1.55 + 0.8))))


def _overlaps(box: tuple[float, float, float, float], placed: list[tuple[float, float, float, float]], gap: float = 3) -> bool:
    return any(not (box[2] + gap <= p[0] or p[2] + gap <= box[0] or box[3] + gap <= p[1] or p[3] + gap <= box[1]) for p in placed)


def _place(rng: random.Random, w: int, h: int, region: tuple[float, float, float, float],
           placed: list[tuple[float, float, float, float]], band: tuple[str, float] | None = None) -> tuple[float, float, float, float]:
    """A non-overlapping box inside `region`; `band` keeps the centre near a line (for left/right or above/below)."""
    x0, y0, x1, y1 = region
    best = None
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
        best = box
        if not _overlaps(box, placed):
            return box
    return best  # type: ignore[return-value]


def layout(objects: list[_Planned], texts: list[str], size: tuple[int, int], rng: random.Random) -> tuple[list[SceneObject], list[RenderedText]]:
    width, height = size
    margin = 6
    full = (margin, margin, width - margin, height - margin)
    total = sum(o.count for o in objects) + (1 if texts and not any(o.cls in TEXT_CARRIERS for o in objects) else 0)
    side = _size_for(total, min(width, height))
    regions = {i: full for i in range(len(objects))}
    bands: dict[int, tuple[str, float]] = {}
    for i, obj in enumerate(objects):
        if obj.relation is None or obj.relation[1] >= len(objects):
            continue
        rel, ref = obj.relation
        mid_x, mid_y = width / 2, height / 2
        halves = {
            "left of": ((margin, margin, mid_x - 4, height - margin), (mid_x + 4, margin, width - margin, height - margin)),
            "right of": ((mid_x + 4, margin, width - margin, height - margin), (margin, margin, mid_x - 4, height - margin)),
            "above": ((margin, margin, width - margin, mid_y - 4), (margin, mid_y + 4, width - margin, height - margin)),
            "below": ((margin, mid_y + 4, width - margin, height - margin), (margin, margin, width - margin, mid_y - 4)),
        }[rel]
        regions[i], regions[ref] = halves
        axis = "y" if rel in ("left of", "right of") else "x"
        line = rng.uniform(height * 0.35, height * 0.65) if axis == "y" else rng.uniform(width * 0.35, width * 0.65)
        bands[i] = bands[ref] = (axis, line)
    placed: list[tuple[float, float, float, float]] = []
    scene_objects: list[SceneObject] = []
    rendered_texts: list[RenderedText] = []
    for i, obj in enumerate(objects):
        carrier = obj.cls in TEXT_CARRIERS and bool(texts)
        w, h = (min(width - 2 * margin, side * 2.2), side * 0.9) if carrier else (side, side)
        band = bands.get(i) if obj.count <= 2 else None
        for _ in range(obj.count):
            box = _place(rng, int(w), int(h), regions[i], placed, band)
            placed.append(box)
            scene_objects.append(SceneObject(cls=obj.cls, color=obj.color, bbox=tuple(round(v, 1) for v in box)))  # type: ignore[arg-type]
            if carrier and texts and len(rendered_texts) < len(texts):
                rendered_texts.append(RenderedText(requested=None, rendered=texts[len(rendered_texts)], bbox=box))
    for text in texts[len(rendered_texts):]:  # no carrier object: a banner
        w, h = min(width - 2 * margin, 30 + 11 * len(text)), side * 0.8
        box = _place(rng, int(w), int(h), full, placed)
        placed.append(box)
        rendered_texts.append(RenderedText(requested=None, rendered=text, bbox=tuple(round(v, 1) for v in box)))  # type: ignore[arg-type]
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
            found.append(Artifact(kind=kind, bbox=(round(x, 1), round(y, 1), round(min(width, x + w), 1), round(min(height, y + h), 1)), severity=round(severity, 2)))
    if rng.random() < model.cut_off:
        found.append(Artifact(kind="cut_off", bbox=(0, 0, 0, 0), severity=round(rng.uniform(0.4, 0.9), 2)))
    return found


def _apply_cut_off(objects: list[SceneObject], artifacts: list[Artifact], seed: int, size: tuple[int, int]) -> tuple[list[SceneObject], list[Artifact]]:
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
    artifacts = [a for a in artifacts if a.kind != "cut_off"] + [Artifact(kind="cut_off", bbox=box, severity=cut.severity)]
    return objects, artifacts


class SketchGenerator:
    """The sketch world's `ImageGenerator`. Images land under `out_dir` as `<sha256>.png` + `<sha256>.scene.json`."""

    name = "sketch"
    batch_size = 8  # candidates per call: a render is ~2 ms, so one call per round beats one task per image

    def __init__(self, out_dir: str | Path, *, size: int | tuple[int, int] = 256, failures: FailureModel | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        if min(self.size) < 64 or max(self.size) > 2048:
            raise ValueError(f"size must be between 64 and 2048 pixels, got {self.size}")
        self.failures = failures or FailureModel()

    def scene_for(self, prompt: str, seed: int) -> SceneGraph:
        """The scene the generator draws for (prompt, seed), before rendering. Like a real model it draws whatever it
        can read: unreadable parts of a prompt are dropped (and noted), never refused."""
        reading = read_prompt_leniently(prompt)
        objects, texts, notes = plan_scene(reading, _rng("plan", prompt, seed), self.failures)
        notes = list(reading.notes[-1:]) + notes if reading.notes and "could not read" in reading.notes[-1] else notes
        scene_objects, rendered = layout(objects, texts, self.size, _rng("layout", prompt, seed))
        requested = list(reading.spec.text)
        rendered = [t.model_copy(update={"requested": requested[k] if k < len(requested) else None}) for k, t in enumerate(rendered)]
        artifacts = artifacts_for_seed(seed, self.size, self.failures)
        scene_objects, artifacts = _apply_cut_off(scene_objects, artifacts, seed, self.size)
        return SceneGraph(prompt=prompt, seed=seed, width=self.size[0], height=self.size[1], objects=tuple(scene_objects),
                          texts=tuple(rendered), artifacts=tuple(artifacts), generator_notes=tuple(notes))

    def render(self, scene: SceneGraph) -> GeneratedImage:
        image = render_scene(scene, artifact_seed=scene.seed)
        ref = image_ref_from_pil(image, self.out_dir)
        scene = scene.model_copy(update={"image_sha256": ref.sha256})
        sidecar = write_sidecar(scene, ref.uri)
        return GeneratedImage(image=ref, prompt=scene.prompt, seed=scene.seed, generator=self.name, sidecar=str(sidecar),
                              metadata={"notes": list(scene.generator_notes)})

    def save_as(self, generated: GeneratedImage, path: str | Path) -> tuple[Path, Path]:
        """Copy a generated image to a chosen path, with its sidecar beside it (`<stem>.scene.json`)."""
        import shutil

        from rationalrewards.agents.sketch.scene import sidecar_path

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(generated.image.uri, path)
        shutil.copyfile(sidecar_path(generated.image.uri), sidecar_path(path))
        return path, sidecar_path(path)

    def generate_one(self, prompt: str, seed: int, source_image: ImageRef | None = None) -> GeneratedImage:
        if not isinstance(prompt, str) or not prompt.strip():
            from rationalrewards.agents.sketch.spec import SceneSpecError

            raise SceneSpecError("empty prompt: describe at least one object, e.g. 'a photo of a cat'")
        if source_image is None:
            return self.render(self.scene_for(prompt, seed))
        from rationalrewards.agents.sketch.edits import edit_scene

        source = load_scene(source_image)
        scene = edit_scene(source, prompt, seed, self.failures)
        generated = self.render(scene.model_copy(update={"source_sha256": source_image.sha256}))
        return generated.model_copy(update={"source_image": source_image})

    async def generate(
        self, prompts: Sequence[str], seeds: Sequence[int], source_images: Sequence[ImageRef | None] | None = None
    ) -> list[GeneratedImage]:
        sources = batch_sources(prompts, seeds, source_images)
        # Rendering and file writes are blocking work: off the event loop (ASGI hosts such as `langgraph dev` refuse
        # blocking calls inside async nodes), so other threads of the graph keep moving meanwhile.
        return await asyncio.to_thread(
            lambda: [self.generate_one(p, s, src) for p, s, src in zip(prompts, seeds, sources, strict=True)]
        )
