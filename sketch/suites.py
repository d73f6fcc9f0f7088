"""Prompt suites: seeded GenEval-schema suites of any size (six tags plus text rendering), paraphrases in many
phrasings, an edit suite, and the small built-in suite the demo runs. Suites are JSONL rows with at least `prompt`;
the GenEval fields (`tag`, `include`, `exclude`, `text`) are the ground truth.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from rationalrewards.sketch._vocab import COCO_CLASSES, COLORS, RELATION_SIDES
from rationalrewards.sketch.spec import ObjectSpec, SceneSpec, plural

T2I_TAGS = ("single_object", "two_object", "counting", "colors", "position", "color_attr", "text_rendering")
_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
_TEXTS = (
    "OPEN",
    "STOP",
    "SALE",
    "EXIT",
    "HELLO",
    "CAFE",
    "PARK",
    "BAKERY",
    "WELCOME",
    "FRESH MILK",
    "NO ENTRY",
    "GOOD LUCK",
)
_CARRIERS = ("sign", "banner", "poster", "board")


def random_spec(tag: str, rng: random.Random) -> SceneSpec:
    """A random spec of `tag`, in GenEval's conventions (reference first for relations, exclude = count + 1)."""
    a, b = rng.sample(COCO_CLASSES, 2)
    c1, c2 = rng.sample(list(COLORS), 2)
    if tag == "single_object":
        include = [ObjectSpec(cls=a)]
    elif tag == "two_object":
        include = [ObjectSpec(cls=a), ObjectSpec(cls=b)]
    elif tag == "counting":
        include = [ObjectSpec(cls=a, count=rng.choice((2, 3, 4)))]
    elif tag == "colors":
        include = [ObjectSpec(cls=a, color=c1)]
    elif tag == "position":
        include = [
            ObjectSpec(cls=b),
            ObjectSpec(cls=a, position=(rng.choice(("left of", "right of", "above", "below")), 0)),
        ]
    elif tag == "color_attr":
        include = [ObjectSpec(cls=a, color=c1), ObjectSpec(cls=b, color=c2)]
    elif tag == "text_rendering":
        return SceneSpec(tag=tag, include=(ObjectSpec(cls=rng.choice(_CARRIERS)),), text=(rng.choice(_TEXTS),))
    else:
        raise ValueError(f"unknown tag {tag!r}; choose from {', '.join(T2I_TAGS)}")
    exclude = [ObjectSpec(cls=o.cls, count=o.count + 1) for o in include if o.count >= 2]
    return SceneSpec(tag=tag, include=tuple(include), exclude=tuple(exclude))


def geneval_prompt(spec: SceneSpec) -> str:
    """GenEval's own phrasing."""
    from rationalrewards.sketch.spec import render_prompt

    return render_prompt(spec)


def make_suite(n: int, seed: int = 0, tags: Iterable[str] = T2I_TAGS) -> list[dict[str, Any]]:
    """`n` rows, tags in turn, each `{prompt, tag, include, exclude?, text?}` in GenEval phrasing."""
    if n < 1:
        raise ValueError("a suite needs at least one prompt")
    tags = tuple(tags)
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        spec = random_spec(tags[i % len(tags)], rng)
        rows.append({"prompt": geneval_prompt(spec), **spec.model_dump()})
    return rows


# ------------------------------------------------------------------ paraphrases ----------------------------------

_FRAMES = (
    "a photo of {}",
    "an image of {}",
    "a picture of {}",
    "a photograph showing {}",
    "{}",
    "an image showing {}",
    "a high-quality photo of {}",
    "generate an image of {}",
    "there is {}",
    "a drawing of {}",
    "a rendering of {}",
)
_RELATIONS = {
    "left of": ("left of", "to the left of", "on the left of", "on the left side of"),
    "right of": ("right of", "to the right of", "on the right of", "on the right side of"),
    "above": ("above", "over", "on top of", "directly above"),
    "below": ("below", "under", "beneath", "underneath"),
}
_IRREGULAR_OK = {"person": "people", "knife": "knives", "sheep": "sheep", "mouse": "mice"}


def _object_phrase(obj: ObjectSpec, rng: random.Random, family: str) -> str:
    name = obj.cls
    if obj.count >= 2:
        name = _IRREGULAR_OK.get(obj.cls, plural(obj.cls))
        if obj.cls in ("skis", "scissors") and family == "pairs":
            name = f"pairs of {obj.cls}"
    if obj.count == 1:
        count = rng.choice(("a", "one", "a single", "exactly one")) if family in ("exactly", "digits") else "a"
        if count == "a" and (obj.color or name)[0] in "aeiou":
            count = "an"
    elif family == "digits":
        count = str(obj.count)
    elif family == "exactly":
        count = rng.choice((f"exactly {obj.count}", f"exactly {_WORDS[obj.count]}"))
    else:
        count = _WORDS[obj.count]
    if obj.color is None:
        return f"{count} {name}"
    style = family if family in ("that_is", "colored", "hyphen") else "adjective"
    if style == "that_is":
        verb = "is" if obj.count == 1 else "are"
        return f"{count} {name} that {verb} {obj.color}"
    if style == "colored":
        return f"{count} {name} colored {obj.color}"
    if style == "hyphen":
        return f"{count} {obj.color}-colored {name}"
    article = ("an" if obj.color[0] in "aeiou" else "a") if count in ("a", "an") else count
    return f"{article} {obj.color} {name}"


PARAPHRASE_FAMILIES = (
    "frames",
    "digits",
    "exactly",
    "relations",
    "that_is",
    "colored",
    "hyphen",
    "plurals",
    "pairs",
    "absolute",
)


def paraphrase(spec: SceneSpec, family: str, rng: random.Random) -> str:
    """A phrasing of `spec` from one family; `parse_scene_spec` must read it back to `spec`."""
    if family not in PARAPHRASE_FAMILIES:
        raise ValueError(f"unknown family {family!r}")
    frame = rng.choice(_FRAMES)
    objects = list(spec.include)
    placed = spec.relation()
    if placed is not None:
        subject, relation, reference = placed
        if family == "absolute":
            sides = RELATION_SIDES[relation]
            tail = rng.choice((" side of the image", " side", ""))
            body = (
                f"{_object_phrase(subject, rng, family)} on the {sides[0]}{tail}, "
                f"{_object_phrase(reference, rng, family)} on the {sides[1]}{tail}"
            )
        else:
            phrase = rng.choice(_RELATIONS[relation]) if family == "relations" else relation
            body = f"{_object_phrase(subject, rng, family)} {phrase} {_object_phrase(reference, rng, family)}"
    else:
        joiner = (
            rng.choice((" and ", " and ", " as well as ", " next to ", " with ")) if family == "frames" else " and "
        )
        body = joiner.join(_object_phrase(o, rng, family) for o in objects)
    for text in spec.text:
        body += rng.choice(
            (f" that says '{text}'", f' that reads "{text}"', f" with the text '{text}'", f' saying "{text}"')
        )
    return frame.format(body)


def paraphrase_suite(n: int, seed: int = 0) -> list[dict[str, object]]:
    """`n` rows across every tag and paraphrase family: `{prompt, family, ...spec}`."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        tag = T2I_TAGS[i % len(T2I_TAGS)]
        family = PARAPHRASE_FAMILIES[(i // len(T2I_TAGS)) % len(PARAPHRASE_FAMILIES)]
        spec = random_spec(tag, rng)
        if family == "plurals":
            spec = _with_irregular_class(spec, rng)
        if family == "pairs" and tag == "counting":
            spec = SceneSpec(
                tag="counting",
                include=(ObjectSpec(cls=rng.choice(("skis", "scissors")), count=spec.include[0].count),),
                exclude=(ObjectSpec(cls="skis", count=spec.include[0].count + 1),),
            )
            spec = spec.model_copy(
                update={"exclude": (ObjectSpec(cls=spec.include[0].cls, count=spec.include[0].count + 1),)}
            )
        rows.append({"prompt": paraphrase(spec, family, rng), "family": family, **spec.model_dump()})
    return rows


def _with_irregular_class(spec: SceneSpec, rng: random.Random) -> SceneSpec:
    cls = rng.choice(tuple(_IRREGULAR_OK))
    include = list(spec.include)
    include[-1 if not include[-1].position else 0] = include[-1 if not include[-1].position else 0].model_copy(
        update={"cls": cls}
    )
    if spec.tag == "counting":
        include = [include[0].model_copy(update={"cls": cls})]
        return spec.model_copy(
            update={"include": tuple(include), "exclude": (ObjectSpec(cls=cls, count=include[0].count + 1),)}
        )
    if len({o.cls for o in include}) < len(include):
        return spec
    return spec.model_copy(update={"include": tuple(include)})


# ------------------------------------------------------------------ edits ----------------------------------------


def make_edit_suite(n: int, seed: int = 0) -> list[dict[str, object]]:
    """Edit rows: `{prompt (instruction), source_prompt, source_seed, edit}` over recolour/add/remove/replace/move."""
    rng = random.Random(seed)
    rows = []
    kinds = ("recolor", "add", "remove", "replace", "move")
    for i in range(n):
        a, b, c = rng.sample(COCO_CLASSES, 3)
        color = rng.choice(list(COLORS))
        source = f"a photo of a {a} and a {b}"
        kind = kinds[i % len(kinds)]
        instruction = {
            "recolor": f"make the {a} {color}",
            "add": f"add a {color} {c}",
            "remove": f"remove the {b}",
            "replace": f"replace the {a} with a {c}",
            "move": f"move the {a} to the {rng.choice(('left', 'right', 'top', 'bottom'))}",
        }[kind]
        rows.append(
            {"prompt": instruction, "source_prompt": source, "source_seed": rng.randrange(10_000), "edit": kind}
        )
    return rows


DEMO_SUITE = (
    "a photo of four clocks",
    "a photo of three wine glasses",
    "a photo of a purple suitcase and an orange pizza",
    "a photo of a red umbrella and a green cow",
    "a photo of a laptop left of a cow",
    "a photo of a dog right of a teddy bear",
    "an elephant below a surfboard",
    "a photo of a white sheep",
    "a photo of a tennis racket and a wine glass",
    "a sign that says 'OPEN'",
    "a photo of two computer mice",
    "a photo of a blue bus above a boat",
)


def demo_suite() -> list[dict[str, object]]:
    from rationalrewards.sketch.spec import parse_scene_spec

    return [{"prompt": p, **parse_scene_spec(p).model_dump()} for p in DEMO_SUITE]


def suite_of_kind(kind: str, n: int, seed: int = 0) -> list[dict[str, object]]:
    """A suite by kind: `t2i` (GenEval phrasing), `paraphrase`, `edit`, or `demo` (fixed; `n` and `seed` unused)."""
    if kind == "demo":
        return demo_suite()
    makers = {"t2i": make_suite, "paraphrase": paraphrase_suite, "edit": make_edit_suite}
    if kind not in makers:
        raise ValueError(f"unknown suite kind {kind!r}; choose t2i, paraphrase, edit or demo")
    return makers[kind](n, seed)
