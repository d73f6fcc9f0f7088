"""Turning critiques into numbers (docs/method.md, "Turning a critique into a number"; paper Eq. 13).

Rules only (no backends, no event loops; the reward adapter for trainers is `reward_fn`). One module owns every
scalarisation rule so that RL, GCR and evaluation agree on what a policy name means:
- `paper`: equal-weight mean of the *active* aspects (image faithfulness only exists in the edit format; text
  rendering is active only when scored, i.e. not N/A), mapped to [0, 1] by (mean - 1) / 3.
- `edit_rl_release`: the released editing RL rule: the mean of text faithfulness, quality and text rendering, leaving
  image faithfulness out (an N/A text rendering is left out too), mapped the same way.
- `all`: every aspect of the task's format, an N/A counted as a flawless 4 (nothing was asked, so nothing is wrong).
  The denominator is then the same for every request, which some RL users prefer over `paper`.

Departure from the release: a failed parse never becomes 0.0 or 2.5; an `Abstention` maps to None and callers mask it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rationalrewards.plumbing.choices import choice
from rationalrewards.rewardmodel.errors import NoActiveAspectsError
from rationalrewards.rewardmodel.schemas import (
    SCORE_MAX,
    SCORE_MIN,
    Abstention,
    Aspect,
    Critique,
    PairwiseJudgement,
    Winner,
    decide_pairwise,
)

RewardPolicy = Literal["paper", "edit_rl_release", "all"]
_POLICIES: tuple[RewardPolicy, ...] = ("paper", "edit_rl_release", "all")
REWARD_POLICIES: tuple[str, ...] = ("paper", "edit_rl_release", "all")


def active_scores(critique: Critique, policy: RewardPolicy = "paper") -> dict[Aspect, float]:
    """The aspect scores that `policy` averages."""
    choice(policy, RewardPolicy, "reward policy")
    scores: dict[Aspect, float] = {}
    for aspect in critique.task.aspects:
        assessment = critique.assessments.get(aspect)
        score = assessment.score if assessment is not None else None
        if policy == "edit_rl_release" and aspect is Aspect.image_faithfulness:
            continue
        if score is None:
            if policy == "all":
                scores[aspect] = SCORE_MAX
            continue
        scores[aspect] = score
    return scores


def mean_score(critique: Critique, policy: RewardPolicy = "paper") -> float:
    """Mean of the active aspects on the 1-4 scale."""
    scores = active_scores(critique, policy)
    if not scores:
        raise NoActiveAspectsError(f"critique has no scored aspect that policy {policy!r} uses")
    return sum(scores.values()) / len(scores)


def reward_from_critique(critique: Critique, policy: RewardPolicy = "paper") -> float:
    """A reward in [0, 1]: (mean of the policy's aspects - 1) / 3."""
    return (mean_score(critique, policy) - SCORE_MIN) / (SCORE_MAX - SCORE_MIN)


def reward_or_none(result: Critique | Abstention, policy: RewardPolicy = "paper") -> float | None:
    """None for an abstention (or a critique with nothing scored): callers mask it, never read it as a number."""
    if isinstance(result, Abstention):
        return None
    try:
        return reward_from_critique(result, policy)
    except NoActiveAspectsError:
        return None


StopRule = Literal["paper", "release"]
STOP_RULES: tuple[StopRule, ...] = ("paper", "release")
# The aspects the released refine script consults (it reads neither image faithfulness nor text rendering).
RELEASE_STOP_ASPECTS = (Aspect.text_faithfulness, Aspect.physical_quality)


def passes_threshold(critique: Critique, threshold: float = 3.0, rule: StopRule = "paper") -> bool:
    """Whether GCR keeps the image. `paper` (as the paper writes it): every active aspect scores at least `threshold`.
    `release` (the released refine script): text faithfulness and physical quality both do; the others are not read."""
    if choice(rule, StopRule, "stop rule") == "release":
        scores = [critique.assessments[a].score if a in critique.assessments else None for a in RELEASE_STOP_ASPECTS]
        return all(score is not None and score >= threshold for score in scores)
    return all(score >= threshold for score in active_scores(critique, "paper").values())


def preferred_with_tolerance(judgement: PairwiseJudgement, tolerance: float) -> Winner:
    return decide_pairwise(judgement.scores_a, judgement.scores_b, tolerance)


@dataclass(frozen=True)
class PairwiseAccuracy:
    """Preference accuracy with ties and abstentions counted apart, never folded into a made-up score.

    `accuracy` = correct / judged, over pairs the model judged (no abstention). A predicted tie on a non-tie label is
    wrong; a label tie is right only if the prediction is a tie. `accuracy_decisive` leaves out label ties.
    """

    n: int
    judged: int
    correct: int
    predicted_ties: int
    label_ties: int
    abstentions: int
    accuracy: float | None
    accuracy_decisive: float | None


def pairwise_accuracy(
    predictions: Sequence[PairwiseJudgement | Abstention | Winner],
    labels: Sequence[Winner],
    tolerance: float = 0.0,
) -> PairwiseAccuracy:
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels")
    judged = correct = predicted_ties = label_ties = abstentions = decisive = decisive_correct = 0
    for prediction, label in zip(predictions, labels, strict=True):
        if label not in ("A", "B", "tie"):
            raise ValueError(f"label must be 'A', 'B' or 'tie', got {label!r}")
        label_ties += label == "tie"
        if isinstance(prediction, Abstention):
            abstentions += 1
            continue
        winner = (
            preferred_with_tolerance(prediction, tolerance) if isinstance(prediction, PairwiseJudgement) else prediction
        )
        judged += 1
        predicted_ties += winner == "tie"
        correct += winner == label
        if label != "tie":
            decisive += 1
            decisive_correct += winner == label
    return PairwiseAccuracy(
        n=len(labels),
        judged=judged,
        correct=correct,
        predicted_ties=predicted_ties,
        label_ties=label_ties,
        abstentions=abstentions,
        accuracy=correct / judged if judged else None,
        accuracy_decisive=decisive_correct / decisive if decisive else None,
    )
