"""Conformance suite (issue 11): critiques and pairwise judgements written in the released format, each with the number
the release's rules give (`rewardmodel.release_rules`) and the number ours give (`parsing` + `scoring`). Where the two
differ, docs/release_differences.md says why; a change to either side shows up here as a failing case."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from rationalrewards.rewardmodel.backends.base import Completion, critique_from_completion
from rationalrewards.rewardmodel.errors import CritiqueParseError
from rationalrewards.rewardmodel.images import image_ref_from_path
from rationalrewards.rewardmodel.parsing import parse_critique, parse_pairwise
from rationalrewards.rewardmodel.release_rules import (
    release_keeps_image,
    release_pairwise_accuracy,
    release_pairwise_totals,
    release_pointwise_reward,
    release_refined_request,
    release_winner,
)
from rationalrewards.rewardmodel.schemas import Abstention, Aspect, Critique, CritiqueRequest, Task
from rationalrewards.rewardmodel.scoring import passes_threshold, reward_or_none


def edit_critique(tf: str, iff: str, pq: str, tr: str | None, *, score_first: bool = False, tail: str = "") -> str:
    """A pointwise edit critique in the released format (`tr=None`: no Text Rendering section at all)."""
    aspects = [("Text Faithfulness", tf), ("Image Faithfulness", iff), ("Physical and Visual Quality", pq)]
    if tr is not None:
        aspects.append(("Text Rendering", tr))
    lines = ["# User Request Analysis", "The user wants the cat's hat to be red.", "# Detailed Judgement"]
    for number, (header, score) in enumerate(aspects, start=1):
        pair = [f"## Score: {score}", "## Justification: What the edited image shows."]
        lines += [f"{number}. {header}:", *(pair if score_first else pair[::-1])]
    lines += ["# Summary: Mostly right.", "", "# User Request Refinement:", "## Refinement Comments: Name the colour."]
    return "\n".join(lines) + "\n" + (tail or "## Refined Request: Put a bright red hat on the cat.\n")


@dataclass(frozen=True)
class PointwiseCase:
    name: str
    text: str
    release: float  # the release's RL reward (0.0 when it reads nothing)
    ours: float | None  # our reward under the same aggregation (`edit_rl_release`); None = we abstain
    request: str = "Put a red hat on the cat"


POINTWISE = [
    PointwiseCase("canonical", edit_critique("3.5", "2.0", "3.0", "N/A"), 0.75, 0.75),
    PointwiseCase("N/A everywhere it may be", edit_critique("4", "4", "4", "N/A"), 1.0, 1.0),
    # The release's RL reader wants the number first: bold scores are unreadable there, so it scores nothing -> 0.0.
    PointwiseCase("bold scores", edit_critique("**3.5**", "**2**", "**3**", "N/A"), 0.0, 0.75),
    PointwiseCase("one bold score", edit_critique("**1.0**", "4", "4.0", "N/A"), 1.0, 0.5),
    PointwiseCase("CRLF line ends", edit_critique("3.5", "2.0", "3.0", "N/A").replace("\n", "\r\n"), 0.75, 0.75),
    PointwiseCase(
        "score inside the justification line",
        edit_critique("3.5", "2.0", "3.0", "N/A").replace(
            "## Justification: What the edited image shows.\n## Score: 3.0",
            "## Justification: What the edited image shows. ## Score: 3.0",
        ),
        0.75,
        0.75,
    ),
    PointwiseCase("score first (test-time order)", edit_critique("3.5", "2", "3", "N/A", score_first=True), 0.75, 0.75),
    # Out of range: the release keeps 5 (a reward above 1 is possible); we clamp a score at most one point out.
    PointwiseCase("out of range by one", edit_critique("5", "4", "3", "N/A"), 1.0, 0.8333),
    PointwiseCase("far out of range", edit_critique("7", "4", "3", "N/A"), 1.3333, None),
    PointwiseCase("a range instead of a score", edit_critique("3-4", "4", "3", "N/A"), 0.6667, None),
    # Text Rendering left out: for a request without text both average the rest; with text asked we abstain.
    PointwiseCase("Text Rendering omitted, no text asked", edit_critique("3.5", "2", "3", None), 0.75, 0.75),
    PointwiseCase(
        "Text Rendering omitted, text asked",
        edit_critique("3.5", "2", "3", None),
        0.75,
        None,
        request="Add a sign that says 'OPEN'",
    ),
    PointwiseCase("no scores at all", "The image looks fine to me.", 0.0, None),
]


def _ours(text: str, request: str) -> float | None:
    try:
        critique = parse_critique(text, Task.edit, request=request)
    except CritiqueParseError:
        return None
    return reward_or_none(critique, "edit_rl_release")


@pytest.mark.parametrize("case", POINTWISE, ids=[c.name for c in POINTWISE])
def test_pointwise_release_and_ours(case: PointwiseCase) -> None:
    assert release_pointwise_reward(case.text, Task.edit) == pytest.approx(case.release, abs=1e-4)
    ours = _ours(case.text, case.request)
    assert (ours is None) == (case.ours is None), ours
    if case.ours is not None:
        assert ours == pytest.approx(case.ours, abs=1e-4)


def test_test_time_rules(tmp_path) -> None:
    """The released refine script: keep when TF >= 3 and PQ >= 3; regenerate with the rest of the `Refined Request:`
    line. Ours reads a refined request written on the next line, and with the `paper` rule also reads IF and TR."""
    same_line = edit_critique("3.5", "2.0", "3.0", "1.5", score_first=True)
    assert release_keeps_image(same_line)
    critique = parse_critique(same_line, Task.edit, request="Add a sign that says 'OPEN'")
    assert passes_threshold(critique, 3.0, "release") and not passes_threshold(critique, 3.0, "paper")
    assert release_refined_request(same_line, "orig") == critique.refined_request == "Put a bright red hat on the cat."

    next_line = edit_critique("2.5", "4", "3", "N/A", tail="## Refined Request:\nPut a bright red hat on the cat.\n")
    assert not release_keeps_image(next_line)
    assert release_refined_request(next_line, "orig") == "orig"  # the release regenerates with the original request
    assert parse_critique(next_line, Task.edit).refined_request == "Put a bright red hat on the cat."

    unreadable = edit_critique("**2.5**", "4", "**three**", "N/A", score_first=True)
    assert not release_keeps_image(unreadable)  # an unreadable score counts 0: regenerate
    with pytest.raises(CritiqueParseError):
        parse_critique(unreadable, Task.edit)  # ours: no made-up number; the critic abstains and is asked again


def test_truncated_answers(png_file) -> None:
    """The release scores a cut-off text as it is; we keep the scores of one cut after its last score (a truncated
    critique) and abstain on one cut before."""
    full = edit_critique("3.5", "2.0", "3.0", "N/A")
    request = CritiqueRequest(
        task="edit", prompt="x", image=image_ref_from_path(png_file), source_image=image_ref_from_path(png_file)
    )
    after = full[: full.index("bright red") + 6]
    ours = critique_from_completion(Completion(after, finish_reason="length"), request)
    assert isinstance(ours, Critique) and ours.truncated
    assert release_pointwise_reward(after) == reward_or_none(ours, "edit_rl_release") == pytest.approx(0.75)
    before = full[: full.index("3. Physical")]
    assert release_pointwise_reward(before) == pytest.approx(5 / 6)  # TF alone: (3.5 - 1) / 3
    ours = critique_from_completion(Completion(before, finish_reason="length"), request)
    assert isinstance(ours, Abstention) and ours.reason == "truncated"


def pairwise(rows: list[tuple[str, str, str]], *, justification: str = "Compared side by side.") -> str:
    """A pairwise T2I judgement in the released format: one (header, Score A, Score B) per aspect."""
    lines = ["# User Request Analysis", "A cat in a red hat.", "# Detailed Judgement"]
    for number, (header, a, b) in enumerate(rows, start=1):
        lines += [f"{number}. {header}:", f"## Justification: {justification}", f"## Score A: {a}", f"## Score B: {b}"]
        lines.append("## Winner: Image A")
    return "\n".join(lines + ["# Summary: Done."]) + "\n"


TF, PQ, TR = "Text Faithfulness", "Physical and Visual Quality", "Text Rendering"


@dataclass(frozen=True)
class PairwiseCase:
    name: str
    text: str
    release: tuple[float, float, str]  # the release's totals and winner
    ours: str | None  # our preferred image; None = we abstain


PAIRWISE = [
    PairwiseCase("canonical", pairwise([(TF, "3.5", "2"), (PQ, "3", "3"), (TR, "N/A", "N/A")]), (9.0, 7.5, "A"), "A"),
    PairwiseCase(
        "bold", pairwise([(TF, "**3.5**", "**2**"), (PQ, "3", "3"), (TR, "N/A", "N/A")]), (9.0, 7.5, "A"), "A"
    ),
    PairwiseCase(
        "CRLF",
        pairwise([(TF, "3.5", "2"), (PQ, "3", "3"), (TR, "N/A", "N/A")]).replace("\n", "\r\n"),
        (9.0, 7.5, "A"),
        "A",
    ),
    # One side N/A: the release counts it 2.5, so a 2 on the other side loses and a 3 wins; we leave the aspect out.
    PairwiseCase(
        "one-sided N/A, low", pairwise([(TF, "3", "3"), (PQ, "3", "3"), (TR, "N/A", "2")]), (8.5, 8.0, "A"), "tie"
    ),
    PairwiseCase(
        "one-sided N/A, high", pairwise([(TF, "3", "3"), (PQ, "3", "3"), (TR, "N/A", "3")]), (8.5, 9.0, "B"), "tie"
    ),
    # The release reads the first number after the colon: a number in the justification run onto the line wins.
    PairwiseCase(
        "score inside the justification line",
        pairwise([(TF, "3", "2"), (PQ, "3", "3"), (TR, "N/A", "N/A")]).replace(
            "## Justification: Compared side by side.\n## Score A: 3\n",
            "## Justification: Image A shows 2 cats, as asked. ## Score A: 3\n",
            1,
        ),
        (7.5, 7.5, "tie"),
        "A",
    ),
    PairwiseCase(
        "out of range", pairwise([(TF, "5", "4"), (PQ, "3", "3"), (TR, "N/A", "N/A")]), (10.5, 9.5, "A"), "tie"
    ),
    PairwiseCase(
        "a score line missing",
        pairwise([(TF, "3.5", "2"), (PQ, "3", "3"), (TR, "N/A", "N/A")]).replace("## Score B: 3\n", "", 1),
        (9.0, 7.0, "A"),
        None,
    ),
    PairwiseCase("no judgement", "Both images are nice.", (7.5, 7.5, "tie"), None),
]


@pytest.mark.parametrize("case", PAIRWISE, ids=[c.name for c in PAIRWISE])
def test_pairwise_release_and_ours(case: PairwiseCase) -> None:
    a, b = release_pairwise_totals(case.text, Task.t2i)
    assert (a, b, release_winner(a, b)) == case.release
    try:
        ours: str | None = parse_pairwise(case.text, Task.t2i).preferred
    except CritiqueParseError:
        ours = None
    assert ours == case.ours


def test_release_accuracy_accounting() -> None:
    """2.5 fallbacks count, a label tie is right only for a predicted tie, no-text failures are skipped."""
    judged = parse_pairwise(PAIRWISE[0].text, Task.t2i)  # A
    unreadable = Abstention(reason="parse_error", raw_text=PAIRWISE[7].text)  # release still reads it: A
    failed = Abstention(reason="timeout")
    tie = Abstention(reason="parse_error", raw_text="nothing")  # 7.5 v 7.5
    result = release_pairwise_accuracy([judged, unreadable, failed, tie, judged], ["A", "A", "A", "tie", "B"])
    assert (result.n, result.evaluated, result.skipped, result.correct, result.predicted_ties) == (5, 4, 1, 3, 1)
    assert result.accuracy == 0.75 and "2.5" in result.rule


def test_cli_eval_rules_release_and_ours_over_http(tmp_path, port: int) -> None:
    """`eval --rules release|ours` on a served critic whose every answer has a one-sided N/A: the release's accounting
    prefers A, ours calls it a tie, and each report names its rule."""
    import json

    from helpers import run_cli
    from rationalrewards.plumbing.files import read_jsonl
    from rationalrewards.rewardmodel.mock_server import MockServer
    from rationalrewards.sketch.world import SketchWorld

    pairs = SketchWorld().pairs(tmp_path / "pairs", 12, label_noise=0.0, seed=4)
    labels = [row["label"] for row in read_jsonl(pairs)]
    with MockServer(port) as server:
        server.state.text = PAIRWISE[3].text
        results = {}
        for rules in ("release", "ours"):
            out = tmp_path / rules
            args = ["eval", "--pairs", str(pairs), "--critic", server.base_url, "--rules", rules, "--out", str(out)]
            run_cli(*args, "--json", check=True)
            results[rules] = json.loads((out / "eval.json").read_text())
            assert len(read_jsonl(out / "judgements.jsonl")) == len(labels)
    assert results["release"]["accuracy"] == pytest.approx(labels.count("A") / len(labels))
    assert results["ours"]["accuracy"] == pytest.approx(labels.count("tie") / len(labels))
    assert results["release"]["rule"].startswith("release") and results["ours"]["rule"].startswith("ours")
    assert results["ours"]["prompts"] == "house"  # auto, and the served model is not a RationalRewards checkpoint
    bad = run_cli("eval", "--pairs", str(pairs), "--rules", "paper")
    assert bad.returncode == 2 and "unknown rules 'paper'" in bad.stderr


def test_pairwise_text_rendering_winner_may_be_na() -> None:
    """The released pairwise skeleton allows `## Winner: N/A` for Text Rendering: read as no winner, not an error."""
    text = pairwise([(TF, "3.5", "2"), (PQ, "3", "3"), (TR, "N/A", "N/A")])
    last = text.rindex("## Winner: Image A")
    judgement = parse_pairwise(text[:last] + "## Winner: N/A" + text[last + len("## Winner: Image A") :], Task.t2i)
    assert judgement.aspects[Aspect.text_rendering].winner is None and judgement.preferred == "A"
    assert judgement.aspects[Aspect.text_faithfulness].winner == "A"
