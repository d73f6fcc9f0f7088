"""`SketchGenerator`: an imperfect text-to-image and editing "model" with ground truth (docs/sketch_world.md).

Deterministic given (prompt, seed): it reads the prompt, misreads it per `FailureModel`, lays the scene out, renders
it with Pillow, and writes a content-addressed PNG plus its scene-graph sidecar (`<sha256>.scene.json`).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from rationalrewards.agents.generator import GeneratedImage, batch_sources
from rationalrewards.rewardmodel.images import image_ref_from_pil
from rationalrewards.rewardmodel.schemas import ImageRef
from rationalrewards.sketch._layout import (
    Planned,
    apply_cut_off,
    artifacts_for_seed,
    layout,
    misspell,
    natural_color,
    other_color,
)
from rationalrewards.sketch._render import render_scene
from rationalrewards.sketch._seeding import seeded_rng as _rng
from rationalrewards.sketch._vocab import INVERSE_RELATION
from rationalrewards.sketch.edits import edit_scene
from rationalrewards.sketch.failures import FailureModel
from rationalrewards.sketch.scene import SceneGraph, load_scene, write_sidecar
from rationalrewards.sketch.spec import PromptReading, plural, read_prompt_leniently


class _Misreading:
    """A reading being misread: the objects and texts to draw, and notes on every mistake made. Each mistake draws
    from the one rng in a fixed order, so a (prompt, seed) always misreads the same way."""

    def __init__(self, reading: PromptReading, rng: random.Random) -> None:
        self.rng = rng
        self.objects = [
            Planned(cls=o.cls, count=o.count, color=o.color or natural_color(o.cls), relation=o.position)
            for o in reading.spec.include
        ]
        self.texts = list(reading.spec.text)
        self.notes: list[str] = []
        self.relation_state = "kept"  # "flipped" or "ignored" once misread
        self.dropped: int | None = None
        self.subject = next((i for i, o in enumerate(self.objects) if o.relation), None)
        # The object named last in the prompt: for "A left of B" that is B, the reference (listed first in the spec).
        self.last = 0 if self.subject is not None else len(self.objects) - 1

    def miscount(self, i: int) -> None:
        obj = self.objects[i]
        new = obj.count - 1 if obj.count > 1 and self.rng.random() < 0.6 else obj.count + 1
        self.notes.append(f"drew {new} instead of {obj.count} {plural(obj.cls)}")
        self.objects[i] = replace(obj, count=new)

    def recolor(self, i: int) -> None:
        obj = self.objects[i]
        new = other_color(obj.color, self.rng)
        self.notes.append(f"painted the {obj.cls} {new} instead of {obj.color}")
        self.objects[i] = replace(obj, color=new)

    def swap_colors(self, i: int, j: int) -> None:
        a, b = self.objects[i], self.objects[j]
        self.notes.append(f"swapped the colours of the {a.cls} and the {b.cls}")
        self.objects[i], self.objects[j] = replace(a, color=b.color), replace(b, color=a.color)

    def misspell_text(self) -> None:
        self.notes.append(f"misspelt the text '{self.texts[0]}'")
        self.texts[0] = misspell(self.texts[0], self.rng)

    def settle(self) -> list[Planned]:
        """Apply the relation and drop decisions; the objects to draw."""
        objects, subject = self.objects, self.subject
        relation = objects[subject].relation if subject is not None else None
        if subject is not None and relation is not None and self.relation_state != "kept":
            rel, ref = relation
            if self.relation_state == "flipped":
                self.notes.append(
                    f"placed the {objects[subject].cls} {INVERSE_RELATION[rel]} the {objects[ref].cls} instead of {rel}"
                )
                objects[subject] = replace(objects[subject], relation=(INVERSE_RELATION[rel], ref))
            else:
                self.notes.append(f"ignored '{rel}' and placed the objects anywhere")
                objects[subject] = replace(objects[subject], relation=None)
        if self.dropped is not None:
            self.notes.append(f"left out the {objects[self.dropped].cls}")
            if subject is not None and subject != self.dropped:
                objects[subject] = replace(objects[subject], relation=None)
            objects = [o for k, o in enumerate(objects) if k != self.dropped]
        return objects


def _prompted_errors(plan: _Misreading, reading: PromptReading, model: FailureModel) -> list[int]:
    """The errors whose rates fall when the prompt is explicit. Returns the indices of coloured objects."""
    rng, spec, explicit = plan.rng, reading.spec, reading.explicit
    for i, obj in enumerate(spec.include):
        if rng.random() < model.count_error(obj.count, explicit[i].count):
            plan.miscount(i)
    colored = [i for i, o in enumerate(spec.include) if o.color]
    for i in colored:
        if rng.random() < model.rate(model.color_miss, explicit[i].color):
            plan.recolor(i)
    if len(colored) >= 2 and rng.random() < model.rate(model.color_swap, all(explicit[i].color for i in colored)):
        plan.swap_colors(colored[0], colored[1])
    if plan.subject is not None:
        placed_explicitly = explicit[plan.subject].position
        roll = rng.random()
        if roll < model.rate(model.relation_flipped, placed_explicitly):
            plan.relation_state = "flipped"
        elif roll < model.rate(model.relation_flipped + model.relation_ignored, placed_explicitly):
            plan.relation_state = "ignored"
    if plan.texts and rng.random() < model.text_error(plan.texts[0], reading.text_explicit):
        plan.misspell_text()
    if len(plan.objects) >= 2 and rng.random() < model.rate(model.drop_last, explicit[plan.last].count):
        plan.dropped = plan.last
    return colored


def _irreducible_error(plan: _Misreading, colored: list[int], model: FailureModel) -> None:
    """With probability `floor`, one more error whatever the prompt says."""
    rng = plan.rng
    if rng.random() >= model.floor:
        return
    options = ["count"] + (["color"] if colored else []) + (["relation"] if plan.subject is not None else [])
    options += ["text"] if plan.texts else []
    options += ["drop"] if len(plan.objects) >= 2 else []
    choice = rng.choice(options)
    if choice == "count":
        plan.miscount(rng.randrange(len(plan.objects)))
    elif choice == "color":
        plan.recolor(rng.choice(colored))
    elif choice == "relation":
        plan.relation_state = "flipped"
    elif choice == "text":
        plan.misspell_text()
    else:
        plan.dropped = plan.last


def plan_scene(
    reading: PromptReading, rng: random.Random, model: FailureModel
) -> tuple[list[Planned], list[str], list[str]]:
    """Apply the failure model to a reading: (objects to draw, texts to draw, notes on what went wrong)."""
    plan = _Misreading(reading, rng)
    if not plan.objects:
        return [], plan.texts, plan.notes
    colored = _prompted_errors(plan, reading, model)
    _irreducible_error(plan, colored, model)
    objects = plan.settle()
    return objects, plan.texts, plan.notes


class SketchGenerator:
    """The sketch world's `ImageGenerator`. Images land under `out_dir` as `<sha256>.png` + `<sha256>.scene.json`,
    two folder levels down, named by the digest's first and second pairs of hex digits (`content_path`)."""

    name = "sketch"
    batch_size = 8  # candidates per call: a render is ~2 ms, so one call per round beats one task per image

    def __init__(
        self, out_dir: str | Path, *, size: int | tuple[int, int] = 256, failures: FailureModel | None = None
    ) -> None:
        self.out_dir = Path(out_dir)
        self.size: tuple[int, int] = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
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
        rendered = [
            t.model_copy(update={"requested": requested[k] if k < len(requested) else None})
            for k, t in enumerate(rendered)
        ]
        artifacts = artifacts_for_seed(seed, self.size, self.failures)
        scene_objects, artifacts = apply_cut_off(scene_objects, artifacts, seed, self.size)
        return SceneGraph(
            prompt=prompt,
            seed=seed,
            width=self.size[0],
            height=self.size[1],
            objects=tuple(scene_objects),
            texts=tuple(rendered),
            artifacts=tuple(artifacts),
            generator_notes=tuple(notes),
        )

    def render(self, scene: SceneGraph) -> GeneratedImage:
        image = render_scene(scene, artifact_seed=scene.seed)
        ref = image_ref_from_pil(image, self.out_dir)
        scene = scene.model_copy(update={"image_sha256": ref.sha256})
        sidecar = write_sidecar(scene, ref.uri)
        return GeneratedImage(
            image=ref,
            prompt=scene.prompt,
            seed=scene.seed,
            generator=self.name,
            sidecar=str(sidecar),
            metadata={"notes": list(scene.generator_notes)},
        )

    def save_as(self, generated: GeneratedImage, path: str | Path) -> tuple[Path, Path]:
        """Copy a generated image to a chosen path, with its sidecar beside it (`<stem>.scene.json`)."""
        import shutil

        from rationalrewards.sketch.scene import sidecar_path

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(generated.image.uri, path)
        shutil.copyfile(sidecar_path(generated.image.uri), sidecar_path(path))
        return path, sidecar_path(path)

    def generate_one(self, prompt: str, seed: int, source_image: ImageRef | None = None) -> GeneratedImage:
        if not isinstance(prompt, str) or not prompt.strip():
            from rationalrewards.sketch.spec import SceneSpecError

            raise SceneSpecError("empty prompt: describe at least one object, e.g. 'a photo of a cat'")
        if source_image is None:
            return self.render(self.scene_for(prompt, seed))
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
