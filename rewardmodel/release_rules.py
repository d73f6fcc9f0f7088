"""The public release's scoring rules, re-implemented so our numbers can stand beside published ones.

Nothing inside the framework decides by these rules: they exist for `rationalrewards eval --rules release`, for the
conformance suite (`tests/test_release_conformance.py`), and for `docs/release_differences.md`, which lists every
place where our own rules (`parsing`, `scoring`) knowingly differ and why. What the release does, as facts:

- **Reading a score.** Pairwise evaluation takes the first number anywhere after the line's first colon; the RL reward
  and test-time scripts take the text after `## Score:`, the RL reward only a number at its very start (so `**3.5**`
  is unreadable there). `N/A` is read literally. No range check and no clamping: `5` stays 5, `3-4` reads 3. When an
  aspect's score is written twice, the last line wins.
- **Pointwise reward (RL).** The mean of text faithfulness, physical quality and text rendering over those it could
  read (N/A and unreadable left out; image faithfulness never used), mapped by (mean - 1) / 3; nothing readable gives
  0.0. `finish_reason` is not consulted: a cut-off text is scored like any other.
- **Pairwise accuracy (evaluation).** Per aspect of the task's format, each side's score; a missing, unreadable or N/A
  score counts 2.5. The sums decide (a difference within the tolerance is a tie); a label tie is right only for a
  predicted tie. A request that produced no text is skipped; accuracy = correct / evaluated.
- **Test-time refinement.** The image is kept when text faithfulness >= 3 and physical quality >= 3 (a score it could
  not read counts 0); otherwise it is regenerated with the text after `Refined Request:` on that same line, or with
  the original request when that is empty.

Aspects are located by their written headers (`Text Faithfulness:` ...) in the text before `# Summary:`. The release's
evaluation parser looks them up by a title built from the key, which for physical quality is `Physical Quality`, a
header the format never writes; we do not reproduce that (see the differences table).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rationalrewards.rewardmodel.schemas import SCORE_MIN, Abstention, Aspect, PairwiseJudgement, Task, Winner

FALLBACK = 2.5  # what the release's evaluation counts for a score it could not read
_ANY_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_LEADING_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?)")
ReleaseScore = float | Literal["N/A"] | None  # None: nothing readable


@dataclass(frozen=True)
class _ScoreReading:
    """How one of the release's scripts reads a score line."""

    after_colon: bool  # the value starts after the line's first colon (else after the marker's last occurrence)
    leading_number: bool  # the number must open the value (else the first number anywhere in it)
    unreadable_overwrites: bool  # a later unreadable line replaces an earlier value (else it is passed over)

    def read(self, line: str, marker: str) -> ReleaseScore:
        value = (line.split(":", 1)[-1] if self.after_colon else line.split(marker)[-1]).strip()
        if value.upper() == "N/A":
            return "N/A"
        match = _LEADING_NUMBER.match(value) if self.leading_number else _ANY_NUMBER.search(value)
        return None if match is None else float(match.group(1) if self.leading_number else match.group())

    def last(self, block: str, marker: str) -> ReleaseScore:
        score: ReleaseScore = None
        for line in block.split("\n"):
            if marker in line:
                value = self.read(line.strip(), marker)
                if value is not None or self.unreadable_overwrites:
                    score = value
        return score


EVALUATION = _ScoreReading(after_colon=True, leading_number=False, unreadable_overwrites=True)
RL_REWARD = _ScoreReading(after_colon=False, leading_number=True, unreadable_overwrites=False)
TEST_TIME = _ScoreReading(after_colon=False, leading_number=False, unreadable_overwrites=False)


def _aspect_blocks(text: str, task: Task) -> dict[Aspect, str]:
    """Each aspect's text: from its header to the next aspect's header, after `Detailed Judgement` (when written) and
    before `# Summary:`. An aspect whose header is missing gets no block, so its score is missing."""
    body = text.replace("\r\n", "\n").split("# Summary:", 1)[0]
    _, judgement, rest = body.partition("Detailed Judgement")
    body = rest if judgement else body
    found: list[tuple[Aspect, int, int]] = []  # (aspect, where its header starts, where its text starts)
    for aspect in task.aspects:
        start = body.find(aspect.header + ":", found[-1][2] if found else 0)
        if start >= 0:
            found.append((aspect, start, start + len(aspect.header) + 1))
    ends = [start for _, start, _ in found[1:]] + [len(body)] * bool(found)
    return {aspect: body[begin:end] for (aspect, _, begin), end in zip(found, ends, strict=True)}


def release_pointwise_reward(text: str, task: Task = Task.edit) -> float:
    """The release's RL reward for a critique text: (mean of readable TF, PQ, TR - 1) / 3, or 0.0."""
    blocks = _aspect_blocks(text or "", task)
    used = (Aspect.text_faithfulness, Aspect.physical_quality, Aspect.text_rendering)
    scores = [s for a in used if isinstance(s := RL_REWARD.last(blocks.get(a, ""), "## Score:"), float)]
    if not scores:
        return 0.0
    return (sum(scores) / len(scores) - SCORE_MIN) / 3


ReleaseMode = Literal["all", "text", "visual"]


def release_mode_aspects(mode: ReleaseMode, task: Task) -> tuple[Aspect, ...]:
    """The aspects the release's evaluation sums in each mode: `all` every aspect of the task's format, `text` text
    faithfulness alone, `visual` physical quality (text-to-image) or image faithfulness and physical quality (edit)."""
    if mode == "all":
        return task.aspects
    if mode == "text":
        return (Aspect.text_faithfulness,)
    if mode == "visual":
        return (Aspect.image_faithfulness, Aspect.physical_quality) if task is Task.edit else (Aspect.physical_quality,)
    raise ValueError(f"unknown mode {mode!r}; choose all, text or visual")


def release_pairwise_totals(text: str, task: Task, aspects: Sequence[Aspect] | None = None) -> tuple[float, float]:
    """Summed scores of A and B over `aspects` (default: the task's) as the release's evaluation counts them (2.5 for
    anything it cannot read)."""
    blocks = _aspect_blocks(text or "", task)
    totals = [0.0, 0.0]
    for aspect in aspects if aspects is not None else task.aspects:
        for side, marker in enumerate(("Score A", "Score B")):
            score = EVALUATION.last(blocks.get(aspect, ""), marker)
            totals[side] += score if isinstance(score, float) else FALLBACK
    return totals[0], totals[1]


def release_winner(total_a: float, total_b: float, tolerance: float = 0.0) -> Winner:
    if abs(total_a - total_b) <= tolerance:
        return "tie"
    return "A" if total_a > total_b else "B"


def release_keeps_image(text: str) -> bool:
    """The released refine script's stop rule on a test-time critique text (edit format)."""
    blocks = _aspect_blocks(text.split("User Request Refinement:", 1)[0], Task.edit)
    scores = [
        TEST_TIME.last(blocks.get(a, ""), "## Score:") for a in (Aspect.text_faithfulness, Aspect.physical_quality)
    ]
    return all(isinstance(s, float) and s >= 3.0 for s in scores)


def release_refined_request(text: str, original: str) -> str:
    """The prompt the released refine script regenerates with: the rest of the `Refined Request:` line, else the
    original request."""
    _, found, refinement = text.partition("User Request Refinement:")
    refined = ""
    for line in refinement.split("\n") if found else []:
        if "Refined Request:" in line:
            refined = line.split("Refined Request:")[-1].strip()
    return refined or original


def release_totals(result: PairwiseJudgement | Abstention, mode: ReleaseMode = "all") -> tuple[float, float] | None:
    """A result's totals under the release's rules in `mode`, or None when the release would skip it (no text came
    back). The text is read the release's way; a judgement without text (an in-process critic, a self-ensemble's
    mean) counts its N/A scores as 2.5."""
    if result.raw_text.strip():
        task = result.task if isinstance(result, PairwiseJudgement) else _task_of(result.raw_text)
        return release_pairwise_totals(result.raw_text, task, release_mode_aspects(mode, task))
    if isinstance(result, PairwiseJudgement):
        keys = [a.value for a in release_mode_aspects(mode, result.task)]
        a = sum(FALLBACK if (v := result.scores_a.get(k)) is None else v for k in keys)
        b = sum(FALLBACK if (v := result.scores_b.get(k)) is None else v for k in keys)
        return a, b
    return None


def _task_of(text: str) -> Task:
    return Task.edit if Aspect.image_faithfulness.header + ":" in text else Task.t2i


@dataclass(frozen=True)
class ReleaseAccuracy:
    """Pairwise accuracy under the release's accounting (`rule` says so in every report)."""

    n: int
    evaluated: int
    correct: int
    skipped: int
    predicted_ties: int
    accuracy: float | None
    rule: str = "release: missing, unreadable or N/A scores count 2.5; summed scores decide; no-text requests skipped"


def release_pairwise_accuracy(
    results: Sequence[PairwiseJudgement | Abstention], labels: Sequence[Winner], tolerance: float = 0.0
) -> ReleaseAccuracy:
    if len(results) != len(labels):
        raise ValueError(f"{len(results)} results but {len(labels)} labels")
    evaluated = correct = skipped = ties = 0
    for result, label in zip(results, labels, strict=True):
        totals = release_totals(result)
        if totals is None:
            skipped += 1
            continue
        predicted = release_winner(*totals, tolerance)
        evaluated += 1
        ties += predicted == "tie"
        correct += predicted == label
    return ReleaseAccuracy(
        n=len(labels),
        evaluated=evaluated,
        correct=correct,
        skipped=skipped,
        predicted_ties=ties,
        accuracy=correct / evaluated if evaluated else None,
    )


__all__ = [
    "FALLBACK",
    "ReleaseAccuracy",
    "ReleaseMode",
    "release_keeps_image",
    "release_mode_aspects",
    "release_pairwise_accuracy",
    "release_pairwise_totals",
    "release_pointwise_reward",
    "release_refined_request",
    "release_totals",
    "release_winner",
]
