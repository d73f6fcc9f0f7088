"""Render typed critiques back into the RationalRewards text format.

The inverse of `parsing.py`. Used by the fakes and the sketch oracle (so their critiques go through the real parser)
and by the property tests, which render random critiques in every variant seen in real outputs and parse them back.
Headers follow docs/method.md ("Output format") exactly: the released checkpoints were trained on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rationalrewards.rewardmodel.schemas import Critique, PairwiseJudgement, Winner

ScoreStyle = Literal["plain", "bold", "over4", "bold_over4"]
WINNER_TEXT: dict[Winner, str] = {"A": "Image A", "B": "Image B", "tie": "It's a tie"}


@dataclass(frozen=True)
class RenderStyle:
    """One of the surface variants real models produce. The default is the canonical released format."""

    score_first: bool = False
    score_style: ScoreStyle = "plain"
    hashes: bool = True  # "## Score: 3" versus "Score: 3"
    newline: str = "\n"
    preamble: str = ""  # prose before the critique
    trailer: str = ""  # prose after a horizontal rule that closes the critique


def format_score(score: float | None, style: ScoreStyle = "plain") -> str:
    if score is None:
        return "N/A"
    text = f"{score:g}"
    if style in ("over4", "bold_over4"):
        text = f"{text}/4"
    if style in ("bold", "bold_over4"):
        text = f"**{text}**"
    return text


def _field(name: str, value: str, style: RenderStyle) -> str:
    return f"{'## ' if style.hashes else ''}{name}: {value}"


def _finish(lines: list[str], style: RenderStyle) -> str:
    if style.preamble:
        lines = [style.preamble, ""] + lines
    if style.trailer:
        lines = lines + ["", "---", style.trailer]
    return style.newline.join("\n".join(lines).split("\n"))


def render_critique(critique: Critique, style: RenderStyle = RenderStyle()) -> str:
    """The pointwise format: analysis, numbered per-aspect judgement, summary, optional refinement section."""
    lines = ["# User Request Analysis", critique.analysis, "", "# Detailed Judgement"]
    for number, aspect in enumerate(critique.task.aspects, start=1):
        assessment = critique.assessments[aspect]
        justification = _field("Justification", assessment.justification, style)
        score = _field("Score", format_score(assessment.score, style.score_style), style)
        lines.append(f"{number}. {aspect.header}:")
        lines.extend([score, justification] if style.score_first else [justification, score])
        lines.append("")
    lines.append(f"# Summary: {critique.summary}")
    if critique.refined_request or critique.refinement_comments:
        lines += [
            "",
            "# User Request Refinement:",
            _field("Refinement Comments", critique.refinement_comments, style),
            _field("Refined Request", critique.refined_request, style),
        ]
    return _finish(lines, style)


def render_pairwise(judgement: PairwiseJudgement, style: RenderStyle = RenderStyle()) -> str:
    """The pairwise format: per aspect a justification, Score A, Score B and a Winner line, then a summary."""
    lines = ["# User Request Analysis", judgement.analysis, "", "# Detailed Judgement"]
    for number, aspect in enumerate(judgement.task.aspects, start=1):
        item = judgement.aspects[aspect]
        scores = [
            _field("Score A", format_score(item.score_a, style.score_style), style),
            _field("Score B", format_score(item.score_b, style.score_style), style),
        ]
        justification = [_field("Justification", item.justification, style)]
        lines.append(f"{number}. {aspect.header}:")
        lines.extend(scores + justification if style.score_first else justification + scores)
        if item.winner is not None:
            lines.append(_field("Winner", WINNER_TEXT[item.winner], style))
        lines.append("")
    lines.append(f"# Summary: {judgement.summary}")
    return _finish(lines, style)
