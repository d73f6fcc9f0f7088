"""Editing in the sketch world: instructions, their exact effect on a scene, the generator's edit failures, and the
edit-success ground truth (requested change made, nothing else changed).

Instructions read: recolour ("make the cat blue", "change the color of the cat to blue", "paint the cat blue"),
add ("add a red cup", "add two dogs"), remove ("remove the clock", "delete the clock"), replace ("replace the cat with
a dog", "turn the cat into a dog"), move ("move the cup to the left"), and text ("change the text to 'OPEN'").
"only" / "keep everything else (unchanged|the same)" make an instruction explicit.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from rationalrewards.sketch._layout import apply_cut_off, artifacts_for_seed, misspell, natural_color, place
from rationalrewards.sketch._seeding import seeded_rng as _rng
from rationalrewards.sketch._vocab import COLORS
from rationalrewards.sketch.failures import FailureModel
from rationalrewards.sketch.scene import SceneGraph, SceneObject
from rationalrewards.sketch.spec import SceneSpecError, _color_word, _parse_object, _resolve_class

EditKind = Literal["recolor", "add", "remove", "replace", "move", "text"]


class EditInstruction(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: EditKind
    target: str | None = None  # the class acted on
    color: str | None = None
    new_class: str | None = None
    count: int = 1
    side: str | None = None
    text: str | None = None
    explicit: bool = False


def _noun(phrase: str) -> str:
    words = [w for w in phrase.strip().split() if w not in ("the", "a", "an", "that", "this")]
    return _resolve_class(words)[0]


_PATTERNS: list[tuple[EditKind, re.Pattern[str]]] = [
    (
        "text",
        re.compile(
            r"(?:change|set|make|replace)\s+(?:the\s+)?(?:text|writing|words?|sign)\s+(?:to|say|read|with)\s+['\"](?P<text>[^'\"]+)['\"]"
        ),
    ),
    ("text", re.compile(r"write\s+['\"](?P<text>[^'\"]+)['\"]")),
    (
        "recolor",
        re.compile(r"(?:change|turn|set)\s+the\s+colou?r\s+of\s+(?:the\s+)?(?P<target>.+?)\s+to\s+(?P<color>[a-z]+)$"),
    ),
    ("replace", re.compile(r"(?:replace|swap)\s+(?:the\s+)?(?P<target>.+?)\s+(?:with|for|by)\s+(?P<new>.+)$")),
    (
        "replace",
        re.compile(
            r"(?:turn|change|transform|convert)\s+(?:the\s+)?(?P<target>.+?)\s+(?:into|to)\s+(?:an?\s+)?(?P<new>.+)$"
        ),
    ),
    (
        "recolor",
        re.compile(
            r"(?:make|paint|color|colour|turn|recolor|recolour)\s+(?:the\s+)?(?P<target>.+?)\s+(?:colou?red\s+)?(?P<color>[a-z]+)$"
        ),
    ),
    (
        "remove",
        re.compile(
            r"(?:remove|delete|erase|take\s+away|take\s+out|get\s+rid\s+of)\s+(?:the\s+|all\s+(?:the\s+)?)?(?P<target>.+)$"
        ),
    ),
    (
        "move",
        re.compile(
            r"(?:move|shift|put|place)\s+(?:the\s+)?(?P<target>.+?)\s+(?:to|on|at|in)\s+the\s+(?P<side>left|right|top|bottom)(?:\s+(?:side|half))?(?:\s+of\s+the\s+(?:image|picture))?$"
        ),
    ),
    (
        "add",
        re.compile(
            r"(?:add|insert|put|place|include|draw)\s+(?P<what>.+?)(?:\s+(?:to|in|into|on)\s+(?:the\s+)?(?:image|picture|scene))?$"
        ),
    ),
]
_EXPLICIT = re.compile(
    r"\b(?:only|keep(?:ing)?\s+everything\s+else|leave\s+everything\s+else|nothing\s+else|exactly)\b"
)
_TAIL = re.compile(
    r"[,;]?\s*(?:and\s+)?(?:keep(?:ing)?|leave|leaving)\s+everything\s+else.*$|[,;]?\s*(?:and\s+)?change\s+nothing\s+else.*$"
)


def parse_edit(instruction: str) -> EditInstruction:
    """Read an edit instruction. Raises `SceneSpecError` naming what was not understood."""
    text = re.sub(r"\s+", " ", (instruction or "").strip())
    if not text:
        raise SceneSpecError("empty edit instruction: say what to change, e.g. 'make the cat blue'")
    explicit = bool(_EXPLICIT.search(text.lower()))
    body = _TAIL.sub("", text).strip(" .!")
    body_lower = re.sub(r"\b(?:please|only|just)\b\s*", "", body.lower()).strip()
    for kind, pattern in _PATTERNS:
        match = pattern.search(body_lower)
        if match is None:
            continue
        if kind == "text":
            raw = re.search(r"['\"]([^'\"]+)['\"]", body)
            return EditInstruction(kind="text", text=raw.group(1) if raw else match.group("text"), explicit=explicit)
        if kind == "recolor":
            color = _color_word(match.group("color"))
            if color is None:
                continue  # "turn the cat into a dog" is a replace, not a colour
            return EditInstruction(kind="recolor", target=_noun(match.group("target")), color=color, explicit=explicit)
        if kind == "replace":
            new = _parse_object(match.group("new"))
            return EditInstruction(
                kind="replace",
                target=_noun(match.group("target")),
                new_class=new.cls,
                color=new.color,
                explicit=explicit,
            )
        if kind == "remove":
            return EditInstruction(kind="remove", target=_noun(match.group("target")), explicit=explicit)
        if kind == "move":
            return EditInstruction(
                kind="move", target=_noun(match.group("target")), side=match.group("side"), explicit=explicit
            )
        added = _parse_object(match.group("what"))
        return EditInstruction(kind="add", target=added.cls, count=added.count, color=added.color, explicit=explicit)
    raise SceneSpecError(
        f"edit instruction not understood: {instruction!r} (try 'make the X blue', 'add a X', "
        "'remove the X', 'replace the X with a Y', 'move the X to the left', \"change the text to 'Y'\")"
    )


def _free_box(
    scene: SceneGraph, size: float, rng: random.Random, taken: list[tuple[float, float, float, float]]
) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = place(rng, int(size), int(size), (6, 6, scene.width - 6, scene.height - 6), taken)
    return (round(x0, 1), round(y0, 1), round(x1, 1), round(y1, 1))


def apply_edit(
    scene: SceneGraph, edit: EditInstruction, rng: random.Random, target_class: str | None = None
) -> SceneGraph:
    """The exact effect of `edit` on `scene` (acting on `target_class` instead of the requested one, if given)."""
    target = target_class or edit.target
    objects = list(scene.objects)
    texts = list(scene.texts)
    hits = [i for i, o in enumerate(objects) if o.cls == target]
    if edit.kind == "recolor":
        objects = [o.model_copy(update={"color": edit.color}) if i in hits else o for i, o in enumerate(objects)]
    elif edit.kind == "remove":
        objects = [o for i, o in enumerate(objects) if i not in hits]
    elif edit.kind == "replace":
        objects = [
            o.model_copy(update={"cls": edit.new_class, "color": edit.color or natural_color(edit.new_class or "")})
            if i in hits
            else o
            for i, o in enumerate(objects)
        ]
    elif edit.kind == "move":
        w = scene.width
        h = scene.height
        moved = []
        for i, o in enumerate(objects):
            if i in hits:
                x0, y0, x1, y1 = o.bbox
                bw, bh = x1 - x0, y1 - y0
                if edit.side in ("left", "right"):
                    nx0 = 8 if edit.side == "left" else w - 8 - bw
                    o = o.model_copy(update={"bbox": (round(nx0, 1), y0, round(nx0 + bw, 1), y1)})
                else:
                    ny0 = 8 if edit.side == "top" else h - 8 - bh
                    o = o.model_copy(update={"bbox": (x0, round(ny0, 1), x1, round(ny0 + bh, 1))})
            moved.append(o)
        objects = moved
    elif edit.kind == "add":
        size = max(24.0, sum(o.bbox[2] - o.bbox[0] for o in objects) / len(objects)) if objects else 60.0
        taken = [o.bbox for o in objects] + [t.bbox for t in texts]
        for _ in range(edit.count):
            box = _free_box(scene, size, rng, taken)
            taken.append(box)
            objects.append(
                SceneObject(cls=target or "object", color=edit.color or natural_color(target or ""), bbox=box)
            )
    elif edit.kind == "text" and texts:
        texts = [texts[0].model_copy(update={"rendered": edit.text, "requested": edit.text})] + texts[1:]
    return scene.model_copy(update={"objects": tuple(objects), "texts": tuple(texts)})


def edit_scene(source: SceneGraph, instruction: str, seed: int, model: FailureModel) -> SceneGraph:
    """What the sketch generator makes of an edit: the exact effect, or one of its realistic failures."""
    edit = parse_edit(instruction)
    rng = _rng("edit", instruction, seed, source.image_sha256)
    notes: list[str] = []
    others = sorted({o.cls for o in source.objects if o.cls != edit.target})
    roll = rng.random()
    p_noop = model.rate(model.edit_noop, edit.explicit)
    p_wrong = (
        model.rate(model.edit_wrong_object, edit.explicit)
        if others and edit.kind in ("recolor", "remove", "replace", "move")
        else 0.0
    )
    if roll < p_noop:
        notes.append("changed nothing")
        result = source
    elif roll < p_noop + p_wrong:
        wrong = rng.choice(others)
        notes.append(f"edited the {wrong} instead of the {edit.target}")
        result = apply_edit(source, edit, rng, target_class=wrong)
    else:
        result = apply_edit(source, edit, rng)
        if edit.kind == "text" and result.texts and rng.random() < model.text_error(edit.text or "", edit.explicit):
            notes.append(f"misspelt the text '{edit.text}'")
            result = result.model_copy(
                update={
                    "texts": (result.texts[0].model_copy(update={"rendered": misspell(edit.text or "", rng)}),)
                    + result.texts[1:]
                }
            )
    if rng.random() < model.rate(model.edit_side_effect, edit.explicit) and result.objects:
        untouched = [i for i, o in enumerate(result.objects) if o.cls != edit.target and o.cls != edit.new_class]
        if untouched:
            i = rng.choice(untouched)
            victim = result.objects[i]
            new_color = rng.choice([c for c in COLORS if c != victim.color])
            notes.append(f"also repainted the {victim.cls} {new_color} (unrequested)")
            objects = list(result.objects)
            objects[i] = victim.model_copy(update={"color": new_color})
            result = result.model_copy(update={"objects": tuple(objects)})
    artifacts = artifacts_for_seed(seed, (source.width, source.height), model)
    objects, artifacts = apply_cut_off(list(result.objects), artifacts, seed, (source.width, source.height))
    return result.model_copy(
        update={
            "prompt": instruction,
            "seed": seed,
            "objects": tuple(objects),
            "artifacts": tuple(artifacts),
            "generator_notes": tuple(notes),
            "image_sha256": "",
        }
    )


@dataclass(frozen=True)
class EditResult:
    """Edit ground truth: did the requested change happen, and did anything else change?"""

    made: bool
    preserved: bool
    errors: tuple[str, ...]

    @property
    def success(self) -> bool:
        return self.made and self.preserved


def _key(o: SceneObject) -> tuple[str, str, tuple[int, int]]:
    cx, cy = o.centroid
    return (o.cls, o.color, (round(cx / 8), round(cy / 8)))


def score_edit(source: SceneGraph, result: SceneGraph, instruction: str) -> EditResult:
    """Compare the edited scene with the exact expected one: the requested change made, nothing else changed."""
    edit = parse_edit(instruction)
    expected = apply_edit(source, edit, _rng("expected", instruction))
    errors: list[str] = []
    touched = {edit.target, edit.new_class}
    exp_target = sorted((o.cls, o.color) for o in expected.objects if o.cls in touched)
    got_target = sorted((o.cls, o.color) for o in result.objects if o.cls in touched)
    made = exp_target == got_target
    if edit.kind == "move":
        exp_boxes = sorted(_key(o) for o in expected.objects if o.cls == edit.target)
        got_boxes = sorted(_key(o) for o in result.objects if o.cls == edit.target)
        made = exp_boxes == got_boxes
    if edit.kind == "text":
        made = [t.rendered for t in result.texts] == [t.rendered for t in expected.texts]
    if edit.kind == "add":
        made = sum(
            o.cls == edit.target and (edit.color is None or o.color == edit.color) for o in result.objects
        ) >= sum(o.cls == edit.target and (edit.color is None or o.color == edit.color) for o in expected.objects)
    if not made:
        errors.append(
            f"the requested change ({edit.kind} {edit.target or ''}) was not made as asked".replace("  ", " ")
        )
    exp_rest = sorted(_key(o) for o in expected.objects if o.cls not in touched)
    got_rest = sorted(_key(o) for o in result.objects if o.cls not in touched)
    preserved = exp_rest == got_rest
    if not preserved:
        changed = sorted({k[0] for k in set(exp_rest) ^ set(got_rest)})
        errors.append("unrequested changes to: " + ", ".join(changed))
    return EditResult(made=made, preserved=preserved, errors=tuple(errors))
