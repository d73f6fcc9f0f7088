"""Fakes that ship with the library: deterministic reward models for tests, examples and pure-logic checks.

Both render their judgements in the real text format and run them through the real parser, so code tested against
them sees exactly what it would see from a served critic.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence

from rationalrewards.rewardmodel.backends.base import Completion
from rationalrewards.rewardmodel.format import render_critique, render_pairwise
from rationalrewards.rewardmodel.parsing import parse_critique, parse_pairwise
from rationalrewards.rewardmodel.prompts import Message
from rationalrewards.rewardmodel.schemas import (
    Abstention,
    AnchoredRequest,
    Aspect,
    AspectAssessment,
    CompareRequest,
    Critique,
    CritiqueRequest,
    ImageRef,
    PairwiseAspect,
    PairwiseJudgement,
    ProjectRequest,
    RepredictRequest,
    Task,
    TeacherRequest,
)

_QUOTED = re.compile(r"[\"'\u2018\u2019\u201c\u201d]([^\"'\u2018\u2019\u201c\u201d]+)[\"'\u2018\u2019\u201c\u201d]")
ScoreMap = Mapping[str, float | None]


def _unit(*parts: str) -> float:
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def requests_text(prompt: str) -> bool:
    """Whether a prompt asks for rendered text (a quoted string), which makes text rendering an active aspect."""
    return bool(_QUOTED.search(prompt))


def critique_from_scores(request: CritiqueRequest, scores: ScoreMap, model: str) -> Critique:
    assessments = {
        aspect: AspectAssessment(
            score=scores.get(aspect.value),
            justification=f"{aspect.header} judged by {model}."
            if scores.get(aspect.value) is not None
            else "No text requested.",
        )
        for aspect in request.task.aspects
    }
    weak = [a.header for a in request.task.aspects if (s := scores.get(a.value)) is not None and s < 3.0]
    critique = Critique(
        task=request.task,
        request=request.prompt,
        assessments=assessments,
        analysis=f"The request asks for: {request.prompt}",
        summary="Weak on " + ", ".join(weak) + "." if weak else "Meets the request.",
        refinement_comments="Be explicit about the weak aspects." if weak and request.with_refinement else "",
        refined_request=f"{request.prompt}, rendered exactly as described" if weak and request.with_refinement else "",
    )
    return parse_critique(render_critique(critique), request.task, request=request.prompt, model=model)


def judgement_from_scores(request: CompareRequest, a: ScoreMap, b: ScoreMap, model: str) -> PairwiseJudgement:
    aspects = {}
    for aspect in request.task.aspects:
        score_a, score_b = a.get(aspect.value), b.get(aspect.value)
        winner = None
        if score_a is not None and score_b is not None:
            winner = "A" if score_a > score_b else "B" if score_b > score_a else "tie"
        aspects[aspect] = PairwiseAspect(
            score_a=score_a, score_b=score_b, winner=winner, justification=f"Compared by {model}."
        )
    judgement = PairwiseJudgement(task=request.task, request=request.prompt, aspects=aspects, summary="Compared.")
    return parse_pairwise(render_pairwise(judgement), request.task, request=request.prompt, model=model)


class FakeRewardModel:
    """Deterministic, schema-valid critiques: scores are a hash of (prompt, image sha256, aspect), in half steps."""

    def __init__(self, name: str = "fake-critic", salt: str = "") -> None:
        self.name = name
        self.salt = salt
        self.calls = 0

    def scores_for(self, prompt: str, image: ImageRef, task: Task) -> dict[str, float | None]:
        scores: dict[str, float | None] = {}
        for aspect in task.aspects:
            if aspect is Aspect.text_rendering and not requests_text(prompt):
                scores[aspect.value] = None
            else:
                scores[aspect.value] = 1.0 + 0.5 * int(_unit(self.salt, prompt, image.sha256, aspect.value) * 7)
        return scores

    async def critique(self, requests: Sequence[CritiqueRequest]) -> list[Critique | Abstention]:
        self.calls += len(requests)
        return [critique_from_scores(r, self.scores_for(r.prompt, r.image, r.task), self.name) for r in requests]

    async def compare(self, pairs: Sequence[CompareRequest]) -> list[PairwiseJudgement | Abstention]:
        self.calls += len(pairs)
        return [
            judgement_from_scores(
                p, self.scores_for(p.prompt, p.image_a, p.task), self.scores_for(p.prompt, p.image_b, p.task), self.name
            )
            for p in pairs
        ]

    async def complete(self, messages: list[Message]) -> Completion:
        self.calls += 1
        text = "".join(
            part.get("text", "")
            for m in messages
            for part in (m["content"] if isinstance(m["content"], list) else [{"text": m["content"]}])
        )
        return Completion(
            text="Answer: " + ("A", "B", "tie")[int(_unit(self.salt, text) * 3)], finish_reason="stop", model=self.name
        )

    async def teach(self, requests: Sequence[TeacherRequest]) -> list[Completion]:
        """A teacher that ignores the label: its rationales are its own hashed scores (tests of PARROT's plumbing)."""
        self.calls += len(requests)
        return [Completion(text=self._teach_one(r), finish_reason="stop", model=self.name) for r in requests]

    def _teach_one(self, request: TeacherRequest) -> str:
        if isinstance(request, AnchoredRequest):
            pair = CompareRequest.like(request)
            a, b = (
                self.scores_for(request.prompt, image, request.task) for image in (request.image_a, request.image_b)
            )
            return judgement_from_scores(pair, a, b, self.name).raw_text
        if isinstance(request, RepredictRequest):
            return "Answer: " + ("A", "B", "tie")[int(_unit(self.salt, request.prompt, request.rationale) * 3)]
        if isinstance(request, ProjectRequest):
            critique = CritiqueRequest.like(request)
            return critique_from_scores(
                critique, self.scores_for(request.prompt, request.image, request.task), self.name
            ).raw_text
        raise TypeError(f"not a teacher request: {type(request).__name__}")
