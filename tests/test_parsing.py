"""Parser: hand-written real-looking variants, failure cases, and property tests over every rendered variant."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rationalrewards.rewardmodel import (
    Aspect,
    Critique,
    CritiqueParseError,
    PairwiseJudgement,
    parse_critique,
    parse_pairwise,
)
from rationalrewards.rewardmodel.format import RenderStyle, render_critique, render_pairwise
from rationalrewards.rewardmodel.schemas import AspectAssessment, PairwiseAspect, Task

RELEASED_T2I = """# User Request Analysis
The user wants four clocks on a wooden table.

# Detailed Judgement
1. Text Faithfulness:
## Justification: Only three clocks are visible; the table is wooden as requested.
## Score: 2.5
2. Physical and Visual Quality:
## Justification: Clean rendering, slight blur on the left clock.
## Score: 3.5
3. Text Rendering:
## Justification: No text was requested.
## Score: N/A

# Summary: The count is wrong, quality is good.

# User Request Refinement:
## Refinement Comments: The request should state the count explicitly.
## Refined Request: A photo of exactly four clocks
standing in a row on a wooden table.
"""

EDIT_SCORE_FIRST = """Here is my evaluation.

# User Request Analysis
Change the car to red.
# Detailed Judgement
**1. Text Faithfulness:**
**Score:** **4**
**Justification:** The car is now red.
**2. Image Faithfulness:**
**Score:** 3.5/4
**Justification:** The background is kept, the reflection changed slightly.
**3. Physical and Visual Quality:**
Score: 3
Justification: A faint seam around the car.
**4. Text Rendering:**
Score: n/a
Justification: No text involved.
# Summary: Good edit.
"""


def test_released_t2i_format() -> None:
    critique = parse_critique(RELEASED_T2I, "t2i")
    assert critique.scores == {"text_faithfulness": 2.5, "physical_quality": 3.5, "text_rendering": None}
    assert critique.assessments[Aspect.text_faithfulness].justification.startswith("Only three clocks")
    assert critique.refined_request == "A photo of exactly four clocks\nstanding in a row on a wooden table."
    assert critique.refinement_comments == "The request should state the count explicitly."
    assert critique.summary == "The count is wrong, quality is good."
    assert critique.analysis == "The user wants four clocks on a wooden table."
    assert critique.warnings == ()


def test_score_first_bold_over4_no_hashes_edit_numbering() -> None:
    critique = parse_critique(EDIT_SCORE_FIRST, Task.edit)
    assert critique.scores == {
        "text_faithfulness": 4.0,
        "image_faithfulness": 3.5,
        "physical_quality": 3.0,
        "text_rendering": None,
    }
    assert critique.assessments[Aspect.image_faithfulness].justification.startswith("The background is kept")


def test_windows_line_endings() -> None:
    critique = parse_critique(RELEASED_T2I.replace("\n", "\r\n"), "t2i")
    assert critique.scores["physical_quality"] == 3.5
    assert "\r" not in critique.refined_request


def test_out_of_range_is_clamped_with_warning() -> None:
    text = RELEASED_T2I.replace("## Score: 2.5", "## Score: 5").replace("## Score: 3.5", "## Score: 0")
    critique = parse_critique(text, "t2i")
    assert critique.scores["text_faithfulness"] == 4.0
    assert critique.scores["physical_quality"] == 1.0
    assert any("clamped to 4" in w for w in critique.warnings)
    assert any("clamped to 1" in w for w in critique.warnings)


def test_justification_mentioning_score_and_aspect_names_does_not_confuse() -> None:
    text = RELEASED_T2I.replace(
        "Only three clocks are visible;",
        "Only three clocks are visible (the text rendering is irrelevant here, and my score reflects that);",
    )
    assert parse_critique(text, "t2i").scores["text_faithfulness"] == 2.5


def test_prose_after_horizontal_rule_or_fence_is_not_part_of_the_refined_request() -> None:
    text = "```markdown\n" + RELEASED_T2I + "```\nLet me know if you need more."
    critique = parse_critique(text, "t2i")
    assert critique.refined_request.endswith("wooden table.")
    text = RELEASED_T2I + "\n---\nNote: this evaluation is subjective."
    assert "subjective" not in parse_critique(text, "t2i").refined_request


def test_score_on_the_line_after_its_marker() -> None:
    text = RELEASED_T2I.replace("## Score: 2.5", "## Score:\n2.5")
    assert parse_critique(text, "t2i").scores["text_faithfulness"] == 2.5


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty"),
        ("   \n\t", "empty"),
        ("I cannot evaluate this image.", "lacks a readable score for: Text Faithfulness"),
        (RELEASED_T2I.split("2. Physical")[0], "Physical and Visual Quality, Text Rendering"),
        (RELEASED_T2I[: RELEASED_T2I.index("## Score: 2.5")], "cut off"),
        (RELEASED_T2I.replace("## Score: 2.5", "## Score: excellent"), "Text Faithfulness"),
    ],
)
def test_unparseable_texts_raise_with_raw_text(text: str, match: str) -> None:
    with pytest.raises(CritiqueParseError, match=match) as info:
        parse_critique(text, "t2i")
    assert info.value.raw_text == text
    assert isinstance(info.value, ValueError)


def test_edit_format_requires_image_faithfulness() -> None:
    with pytest.raises(CritiqueParseError, match="Image Faithfulness"):
        parse_critique(RELEASED_T2I, "edit")


def test_duplicate_aspect_keeps_first_and_warns() -> None:
    text = RELEASED_T2I.replace("# Summary:", "1. Text Faithfulness:\n## Justification: again\n## Score: 1\n# Summary:")
    critique = parse_critique(text, "t2i")
    assert critique.scores["text_faithfulness"] == 2.5
    assert any("twice" in w for w in critique.warnings)


PAIRWISE = """# Detailed Judgement
1. Text Faithfulness:
## Justification: A shows four clocks, B shows three.
## Score A: 4
## Score B: 2.5
## Winner: Image A
2. Physical and Visual Quality:
## Justification: Both are clean.
## Score A: 3.5
## Score B: 3.5
## Winner: It's a tie
3. Text Rendering:
## Justification: No text requested.
## Score A: N/A
## Score B: N/A
## Winner: It's a tie
# Summary: A is better.
"""


def test_pairwise_summed_rule_ignores_winner_lines() -> None:
    judgement = parse_pairwise(PAIRWISE, "t2i")
    assert judgement.scores_a == {"text_faithfulness": 4.0, "physical_quality": 3.5, "text_rendering": None}
    assert judgement.scores_b["text_faithfulness"] == 2.5
    assert judgement.preferred == "A"
    assert judgement.aspects[Aspect.physical_quality].winner == "tie"
    # A Winner line that contradicts the scores does not change the decision.
    flipped = parse_pairwise(PAIRWISE.replace("## Winner: Image A", "## Winner: Image B"), "t2i")
    assert flipped.aspects[Aspect.text_faithfulness].winner == "B"
    assert flipped.preferred == "A"


def test_pairwise_missing_score_b_raises() -> None:
    with pytest.raises(CritiqueParseError, match="Text Faithfulness"):
        parse_pairwise(PAIRWISE.replace("## Score B: 2.5\n", ""), "t2i")


# ---- property tests: render random critiques in every supported variant, parse them back exactly ----

_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
_SENTENCE = st.lists(_WORD, min_size=1, max_size=8).map(lambda ws: " ".join(ws).capitalize() + ".")
_PARAGRAPH = st.lists(_SENTENCE, min_size=1, max_size=3).map("\n".join)
_SCORE = st.integers(min_value=2, max_value=8).map(lambda i: i / 2) | st.integers(10, 40).map(lambda i: i / 10)
_STYLE = st.builds(
    RenderStyle,
    score_first=st.booleans(),
    score_style=st.sampled_from(["plain", "bold", "over4", "bold_over4"]),
    hashes=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n"]),
    preamble=st.sampled_from(["", "Sure, here is my evaluation.", "Let me look at the image carefully.\n"]),
    trailer=st.sampled_from(["", "I hope this helps.", "Note: scores are subjective."]),
)


@st.composite
def critiques(draw: st.DrawFn) -> Critique:
    task = draw(st.sampled_from(list(Task)))
    assessments = {}
    for aspect in task.aspects:
        score = draw(st.none() | _SCORE) if aspect is Aspect.text_rendering else draw(_SCORE)
        assessments[aspect] = AspectAssessment(score=score, justification=draw(_PARAGRAPH))
    refine = draw(st.booleans())
    return Critique(
        task=task,
        assessments=assessments,
        analysis=draw(_PARAGRAPH),
        summary=draw(_SENTENCE),
        refinement_comments=draw(_PARAGRAPH) if refine else "",
        refined_request=draw(_PARAGRAPH) if refine else "",
    )


@settings(max_examples=300, deadline=None)
@given(critique=critiques(), style=_STYLE)
def test_property_pointwise_round_trip(critique: Critique, style: RenderStyle) -> None:
    text = render_critique(critique, style)
    parsed = parse_critique(text, critique.task)
    assert parsed.scores == critique.scores
    for aspect in critique.task.aspects:
        assert parsed.assessments[aspect].justification == critique.assessments[aspect].justification
    assert parsed.analysis == critique.analysis
    assert parsed.summary == critique.summary
    assert parsed.refinement_comments == critique.refinement_comments
    assert parsed.refined_request == critique.refined_request
    assert parsed.raw_text == text
    assert parsed.warnings == ()


@st.composite
def judgements(draw: st.DrawFn) -> PairwiseJudgement:
    task = draw(st.sampled_from(list(Task)))
    aspects = {}
    for aspect in task.aspects:
        if aspect is Aspect.text_rendering and draw(st.booleans()):
            a = b = None
        else:
            a, b = draw(_SCORE), draw(_SCORE)
        winner = draw(st.sampled_from(["A", "B", "tie", None]))
        aspects[aspect] = PairwiseAspect(score_a=a, score_b=b, winner=winner, justification=draw(_PARAGRAPH))
    return PairwiseJudgement(task=task, aspects=aspects, analysis=draw(_PARAGRAPH), summary=draw(_SENTENCE))


@settings(max_examples=200, deadline=None)
@given(judgement=judgements(), style=_STYLE)
def test_property_pairwise_round_trip(judgement: PairwiseJudgement, style: RenderStyle) -> None:
    parsed = parse_pairwise(render_pairwise(judgement, style), judgement.task)
    assert parsed.scores_a == judgement.scores_a
    assert parsed.scores_b == judgement.scores_b
    assert parsed.preferred == judgement.preferred
    for aspect in judgement.task.aspects:
        assert parsed.aspects[aspect].winner == judgement.aspects[aspect].winner
        assert parsed.aspects[aspect].justification == judgement.aspects[aspect].justification
    assert parsed.summary == judgement.summary


@settings(max_examples=200, deadline=None)
@given(critique=critiques(), cut=st.floats(min_value=0.0, max_value=1.0))
def test_property_truncated_text_never_yields_invented_scores(critique: Critique, cut: float) -> None:
    """Cut a critique anywhere: either every score read is exactly the true one, or the parse fails loudly."""
    text = render_critique(critique)
    truncated = text[: int(len(text) * cut)]
    try:
        parsed = parse_critique(truncated, critique.task)
    except CritiqueParseError as e:
        assert e.raw_text == truncated
        return
    for aspect, score in parsed.scores.items():
        true = critique.scores[aspect]
        # A number cut mid-way ("3.5" -> "3") is the one way a prefix can differ: it must still be a prefix.
        assert score == true or (true is not None and score is not None and f"{true:g}".startswith(f"{score:g}"))
