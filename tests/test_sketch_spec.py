"""Prompt understanding: GenEval exactness, paraphrase families, hand-written phrasings, bad input, round trips."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rationalrewards.sketch import SceneSpecError, parse_scene_spec, read_prompt, render_prompt
from rationalrewards.sketch.spec import SceneSpec
from rationalrewards.sketch.suites import (
    PARAPHRASE_FAMILIES,
    T2I_TAGS,
    make_suite,
    paraphrase_suite,
    random_spec,
)

GENEVAL = Path(__file__).resolve().parents[1] / "benchmarks/data/geneval/evaluation_metadata.jsonl"


def test_all_553_geneval_prompts_parse_to_their_exact_specs() -> None:
    rows = [json.loads(line) for line in GENEVAL.open()]
    assert len(rows) == 553
    wrong = [
        r["prompt"]
        for r in rows
        if parse_scene_spec(r["prompt"]).model_dump() != {k: v for k, v in r.items() if k != "prompt"}
    ]
    assert wrong == []


def test_paraphrase_families_parse_at_least_99_percent_each() -> None:
    rows = paraphrase_suite(2800, seed=5)
    totals, right = Counter(), Counter()
    for row in rows:
        expected = {k: v for k, v in row.items() if k not in ("prompt", "family")}
        totals[row["family"]] += 1
        with contextlib.suppress(SceneSpecError):
            right[row["family"]] += parse_scene_spec(row["prompt"]).model_dump() == expected
    assert set(totals) == set(PARAPHRASE_FAMILIES)
    for family in PARAPHRASE_FAMILIES:
        assert right[family] / totals[family] >= 0.99, family


def _spec(*objects: dict, exclude: list | None = None, tag: str) -> dict:
    spec = {"tag": tag, "include": list(objects)}
    if exclude:
        spec["exclude"] = exclude
    return spec


HAND_WRITTEN = {
    "Four clocks.": _spec({"class": "clock", "count": 4}, exclude=[{"class": "clock", "count": 5}], tag="counting"),
    "An image containing 3 giraffes": _spec(
        {"class": "giraffe", "count": 3}, exclude=[{"class": "giraffe", "count": 4}], tag="counting"
    ),
    "exactly two wine glasses": _spec(
        {"class": "wine glass", "count": 2}, exclude=[{"class": "wine glass", "count": 3}], tag="counting"
    ),
    "a picture of five knives": _spec(
        {"class": "knife", "count": 5}, exclude=[{"class": "knife", "count": 6}], tag="counting"
    ),
    "three mice": _spec({"class": "mouse", "count": 3}, exclude=[{"class": "mouse", "count": 4}], tag="counting"),
    "two computer mice": _spec(
        {"class": "computer mouse", "count": 2}, exclude=[{"class": "computer mouse", "count": 3}], tag="counting"
    ),
    "six people": _spec({"class": "person", "count": 6}, exclude=[{"class": "person", "count": 7}], tag="counting"),
    "two pairs of skis": _spec({"class": "skis", "count": 2}, exclude=[{"class": "skis", "count": 3}], tag="counting"),
    "a pair of scissors": _spec({"class": "scissors", "count": 1}, tag="single_object"),
    "a cow that is blue": _spec({"class": "cow", "count": 1, "color": "blue"}, tag="colors"),
    "a cow colored blue": _spec({"class": "cow", "count": 1, "color": "blue"}, tag="colors"),
    "a blue-colored cow": _spec({"class": "cow", "count": 1, "color": "blue"}, tag="colors"),
    "an orange orange": _spec({"class": "orange", "count": 1, "color": "orange"}, tag="colors"),
    "a photo of an orange": _spec({"class": "orange", "count": 1}, tag="single_object"),
    "a sofa and a fridge": _spec(
        {"class": "couch", "count": 1}, {"class": "refrigerator", "count": 1}, tag="two_object"
    ),
    "a black cat next to a white dog": _spec(
        {"class": "cat", "count": 1, "color": "black"}, {"class": "dog", "count": 1, "color": "white"}, tag="color_attr"
    ),
    "a laptop positioned to the left of a cow": _spec(
        {"class": "cow", "count": 1}, {"class": "laptop", "count": 1, "position": ["left of", 0]}, tag="position"
    ),
    "the train is below the airplane": _spec(
        {"class": "airplane", "count": 1}, {"class": "train", "count": 1, "position": ["below", 0]}, tag="position"
    ),
    "a bird flying high above a skateboard": _spec(
        {"class": "skateboard", "count": 1}, {"class": "bird", "count": 1, "position": ["above", 0]}, tag="position"
    ),
    "an elephant underneath a surfboard": _spec(
        {"class": "surfboard", "count": 1}, {"class": "elephant", "count": 1, "position": ["below", 0]}, tag="position"
    ),
    "exactly three red apples on the left side of the image, a single blue cup on the right": _spec(
        {"class": "cup", "count": 1, "color": "blue"},
        {"class": "apple", "count": 3, "color": "red", "position": ["left of", 0]},
        exclude=[{"class": "apple", "count": 4}],
        tag="position",
    ),
    "on the left, a red apple; on the right, a green apple": _spec(
        {"class": "apple", "count": 1, "color": "green"},
        {"class": "apple", "count": 1, "color": "red", "position": ["left of", 0]},
        tag="position",
    ),
    "a photo of a zorblax": _spec({"class": "zorblax", "count": 1}, tag="single_object"),
    "a dog without a cat": _spec(
        {"class": "dog", "count": 1}, exclude=[{"class": "cat", "count": 1}], tag="single_object"
    ),
    "a photo of a cat, photorealistic, 4k": _spec({"class": "cat", "count": 1}, tag="single_object"),
    "a photo of a dog in a park": _spec({"class": "dog", "count": 1}, tag="single_object"),
}


@pytest.mark.parametrize("prompt", list(HAND_WRITTEN))
def test_hand_written_phrasings(prompt: str) -> None:
    assert parse_scene_spec(prompt).model_dump() == HAND_WRITTEN[prompt]


def test_quoted_text_is_a_rendering_requirement() -> None:
    for prompt in ("a sign that says 'OPEN'", 'a wooden sign that reads "OPEN"', "a sign with the text 'OPEN'"):
        spec = parse_scene_spec(prompt).model_dump()
        assert spec == {"tag": "text_rendering", "include": [{"class": "sign", "count": 1}], "text": ["OPEN"]}, prompt
    assert parse_scene_spec("a cake with the words 'HAPPY BIRTHDAY' written on it").text == ("HAPPY BIRTHDAY",)


@pytest.mark.parametrize(
    "prompt, message",
    [
        ("", "empty prompt"),
        ("   ", "empty prompt"),
        ("a photo of", "no object"),
        ("a photo of four", "'four' names no object"),
        ("a photo of 0 cats", "count 0"),
        ("1000 dogs", "exceeds the sketch world's limit of 12"),
        ("a teal cup", "colour 'teal' is not one of"),
        ("many apples", "give a number"),
        (b"a photo of \xff cats", "not valid UTF-8"),
        ("a photo of \udcff cats", "not valid UTF-8"),
        ("a photo of a laptop left of", "needs an object on each side"),
    ],
)
def test_bad_prompts_give_clear_errors(prompt: str | bytes, message: str) -> None:
    with pytest.raises(SceneSpecError, match=message):
        parse_scene_spec(prompt)


def test_explicitness_is_reported() -> None:
    plain = read_prompt("a photo of four clocks")
    explicit = read_prompt("exactly 4 clocks")
    assert not plain.explicit[0].count and explicit.explicit[0].count
    placed = read_prompt("a cat on the left side of the image, a dog on the right side of the image")
    assert all(e.position for e in placed.explicit)
    assert read_prompt("a cat colored blue").explicit[0].color and not read_prompt("a blue cat").explicit[0].color


_TAGS = st.sampled_from(T2I_TAGS)


@settings(max_examples=300, deadline=None)
@given(tag=_TAGS, seed=st.integers(0, 10_000), explicit=st.booleans())
def test_property_render_prompt_round_trips(tag: str, seed: int, explicit: bool) -> None:
    import random

    spec = random_spec(tag, random.Random(seed))
    assert parse_scene_spec(render_prompt(spec, explicit=explicit)) == spec


def test_suites_carry_their_ground_truth() -> None:
    rows = make_suite(70, seed=3)
    assert Counter(r["tag"] for r in rows) == {tag: 10 for tag in T2I_TAGS}
    for row in rows:
        assert SceneSpec.from_geneval(row) == parse_scene_spec(row["prompt"])
