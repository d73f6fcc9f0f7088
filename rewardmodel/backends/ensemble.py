"""Self-ensembling: N critiques per request, one answer of their per-aspect means (`--samples N`).

A sampling critic (an HTTP server at its temperature, a local model with `temperature > 0`) answers the same request
differently each time; averaging the scores of N answers steadies the judgement. The result is an ordinary `Critique`
or `PairwiseJudgement` whose scores are the means, with `samples` (how many answers parsed) and `spread` (each
score's standard deviation). An aspect that some answers score and others mark N/A takes the mean of those that
scored it; N/A only when none did. Fewer than `quorum` parsed answers (default: half of N, rounded up) is an
abstention, carrying the first failure's reason: a mean over too few answers would pass for a steadier score than it
is.

The mean has no single text behind it: `raw_text` is empty and `analysis` and justifications are the first parsed
answer's, so the release's text-reading accounting (`--rules release`) reads the mean scores, 2.5 for N/A.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from rationalrewards.rewardmodel.backends.base import Completion, Message, RewardModel, aclose_backends
from rationalrewards.rewardmodel.schemas import (
    Abstention,
    Aspect,
    AspectAssessment,
    CompareRequest,
    Critique,
    CritiqueRequest,
    PairwiseAspect,
    PairwiseJudgement,
)


def _mean(values: list[float | None]) -> tuple[float | None, float]:
    scored = [v for v in values if v is not None]
    if not scored:
        return None, 0.0
    return statistics.fmean(scored), statistics.pstdev(scored) if len(scored) > 1 else 0.0


@dataclass
class SelfEnsemble:
    """A `RewardModel` answering each request from `samples` answers of `critics` (one critic asked `samples` times,
    or several seeded replicas of a critic, taken in turn)."""

    critics: Sequence[RewardModel]
    samples: int
    quorum: int | None = None

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError(f"samples must be at least 1, got {self.samples}")
        if not self.critics:
            raise ValueError("a self-ensemble needs a critic")
        self.quorum = self.quorum or (self.samples + 1) // 2
        if not 1 <= self.quorum <= self.samples:
            raise ValueError(f"quorum must be in [1, {self.samples}], got {self.quorum}")

    @property
    def name(self) -> str:
        return f"{getattr(self.critics[0], 'name', type(self.critics[0]).__name__)} x{self.samples}"

    async def _answers(self, method: str, requests: Sequence[object]) -> list[list[object]]:
        """`samples` answers per request: sample i goes to critic i mod len(critics), all of one critic's in one
        call (so a batching backend batches them)."""
        per_critic: dict[int, list[tuple[int, object]]] = {}
        for i in range(self.samples):
            per_critic.setdefault(i % len(self.critics), []).extend(enumerate(requests))
        answers: list[list[object]] = [[] for _ in requests]
        for index, items in per_critic.items():
            results = await getattr(self.critics[index], method)([r for _, r in items])
            for (position, _), result in zip(items, results, strict=True):
                answers[position].append(result)
        return answers

    def _enough(self, answers: list[object], kind: type) -> list[object] | Abstention:
        parsed = [a for a in answers if isinstance(a, kind)]
        if len(parsed) >= (self.quorum or 1):
            return parsed
        failure = next((a for a in answers if isinstance(a, Abstention)), None)
        detail = f"{len(parsed)} of {self.samples} answers parsed; the quorum is {self.quorum}"
        if failure is None:
            return Abstention(reason="parse_error", detail=detail)
        return failure.model_copy(update={"detail": f"{detail} ({failure.reason}: {failure.detail})"})

    async def critique(self, requests: Sequence[CritiqueRequest]) -> list[Critique | Abstention]:
        out: list[Critique | Abstention] = []
        for answers in await self._answers("critique", requests):
            parsed = self._enough(answers, Critique)
            out.append(parsed if isinstance(parsed, Abstention) else _mean_critique(parsed))  # type: ignore[arg-type]
        return out

    async def compare(self, pairs: Sequence[CompareRequest]) -> list[PairwiseJudgement | Abstention]:
        out: list[PairwiseJudgement | Abstention] = []
        for answers in await self._answers("compare", pairs):
            parsed = self._enough(answers, PairwiseJudgement)
            out.append(parsed if isinstance(parsed, Abstention) else _mean_judgement(parsed))  # type: ignore[arg-type]
        return out

    async def complete(self, messages: list[Message]) -> Completion:
        return await self.critics[0].complete(messages)

    async def aclose(self) -> None:
        await aclose_backends(*self.critics)


def _mean_critique(answers: list[Critique]) -> Critique:
    first = answers[0]
    assessments: dict[Aspect, AspectAssessment] = {}
    spread: dict[str, float] = {}
    for aspect, assessment in first.assessments.items():
        mean, sd = _mean([a.assessments[aspect].score if aspect in a.assessments else None for a in answers])
        assessments[aspect] = AspectAssessment(score=mean, justification=assessment.justification)
        spread[aspect.value] = sd
    return first.model_copy(
        update={"assessments": assessments, "raw_text": "", "samples": len(answers), "spread": spread}
    )


def _mean_judgement(answers: list[PairwiseJudgement]) -> PairwiseJudgement:
    first = answers[0]
    aspects: dict[Aspect, PairwiseAspect] = {}
    spread: dict[str, float] = {}
    for aspect, first_aspect in first.aspects.items():
        present = [a.aspects[aspect] for a in answers if aspect in a.aspects]
        mean_a, sd_a = _mean([p.score_a for p in present])
        mean_b, sd_b = _mean([p.score_b for p in present])
        aspects[aspect] = PairwiseAspect(score_a=mean_a, score_b=mean_b, justification=first_aspect.justification)
        spread |= {f"{aspect.value}:a": sd_a, f"{aspect.value}:b": sd_b}
    return first.model_copy(update={"aspects": aspects, "raw_text": "", "samples": len(answers), "spread": spread})


__all__ = ["SelfEnsemble"]
