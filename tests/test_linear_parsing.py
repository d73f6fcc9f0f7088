"""Every reader of untrusted text runs in linear time: critique and pairwise parsing, re-prediction answers, the wire
reader's request text, the sketch world's prompt and edit readers. A long run of one character (or a short unit)
anywhere must cost proportionally, never the polynomial time nested or adjacent quantifiers can take."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rationalrewards.rewardmodel.errors import CritiqueParseError
from rationalrewards.rewardmodel.parsing import asks_for_text, parse_critique, parse_pairwise
from rationalrewards.rewardmodel.prompts import parse_repredict, strip_winner_lines
from rationalrewards.sketch.edits import parse_edit
from rationalrewards.sketch.spec import SceneSpecError, parse_scene_spec

READERS: dict[str, Callable[[str], object]] = {
    "critique": lambda s: parse_critique(s, "t2i"),
    "pairwise": lambda s: parse_pairwise(s, "edit"),
    "repredict": parse_repredict,
    "strip_winner_lines": strip_winner_lines,
    "asks_for_text": asks_for_text,
    "scene_spec": parse_scene_spec,
    "edit": parse_edit,
}
# Where the run sits: line start, after markers, inside values, quotes, relations and answers.
CONTEXTS: list[Callable[[str], str]] = [
    lambda run: run + "x",
    lambda run: "## Score: " + run + "x",
    lambda run: "1. Text Faithfulness:" + run + "\n## Score:" + run + "3" + run + "\n# Summary:" + run,
    lambda run: "## Justification: ok" + run + "## Score: 3",
    lambda run: "**" + run + "Score" + run + ":" + run + "**",
    lambda run: "answer" + run + "image" + run + "x",
    lambda run: "a photo of" + run + "four clocks" + run + "left of" + run + "a cow",
    lambda run: "a sign that says '" + run + "' and" + run,
    lambda run: "make the" + run + "cat" + run + "blue" + run,
]
UNITS = [
    " ",
    "\t",
    "\n",
    "\r\n",
    "#",
    "*",
    "-",
    ":",
    "/",
    "0",
    "9.",
    "a",
    ".",
    ",",
    "'",
    '"',
    "`",
    "_",
    "## ",
    "1. ",
    "score ",
    "n/a ",
    "to ",
    "the ",
    "of ",
]


def _once(reader: Callable[[str], object], text: str) -> float:
    started = time.perf_counter()
    with contextlib.suppress(CritiqueParseError, SceneSpecError, ValueError):  # refusing is fine; taking long is not
        reader(text)
    return time.perf_counter() - started


def _check_linear(reader: Callable[[str], object], build: Callable[[str], str], unit: str) -> None:
    small, large = build(unit * 500), build(unit * 8_000)
    # Best of three, the two sizes interleaved: the machine is shared (other test workers, other processes), and a
    # preempted run says nothing about the reader; a quadratic one is slow every time. A ratio over the bound is
    # measured again (up to three tries: a CI machine under load once gave 65x for a reader measured at 16-18x quiet).
    for _ in range(3):
        t_small = t_large = float("inf")
        for _ in range(3):
            t_small, t_large = min(t_small, _once(reader, small)), min(t_large, _once(reader, large))
        # Linear: 16x the input, about 16x the time; quadratic would be ~256x. A floor keeps microsecond noise out.
        if t_large < 1.0 and t_large / max(t_small, 2e-4) < 64:
            return
    assert t_large < 1.0, f"{len(large)} characters took {t_large:.2f}s"
    assert t_large / max(t_small, 2e-4) < 64, f"{t_small * 1e3:.2f} ms -> {t_large * 1e3:.2f} ms for 16x the input"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(READERS))
def test_every_reader_is_linear_in_repeated_runs(name: str) -> None:
    reader = READERS[name]
    for build in CONTEXTS:
        for unit in UNITS:
            _check_linear(reader, build, unit)


def test_the_reported_worst_cases_are_fast() -> None:
    started = time.perf_counter()
    for reader in (lambda s: parse_critique(s, "t2i"), parse_repredict):
        _once(reader, " " * 2_000 + "x")  # was ~133 s for the critique parser
        _once(reader, "answer" + " " * 2_000 + "x")
    assert time.perf_counter() - started < 1.0


@settings(max_examples=60, deadline=None)
@given(
    unit=st.text(min_size=1, max_size=4),
    prefix=st.text(max_size=30),
    suffix=st.text(max_size=30),
    name=st.sampled_from(sorted(READERS)),
)
def test_property_random_repeated_units_stay_linear(unit: str, prefix: str, suffix: str, name: str) -> None:
    _check_linear(READERS[name], lambda run: prefix + run + suffix, unit)
