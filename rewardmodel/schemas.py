"""Core wire types of a reasoning reward model (docs/concepts.md, "Core types").

Pydantic v2 models, each with a `kind` discriminator so that a mixed list (critiques and abstentions, say) survives a
JSON round trip. This module imports no torch, PIL or HTTP client: graphs and tests load it in milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, ClassVar, Literal, Self, Union

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator, model_validator

SCORE_MIN = 1.0
SCORE_MAX = 4.0


class Aspect(StrEnum):
    """A rubric dimension. Values are the stable keys of `Critique.scores`."""

    text_faithfulness = "text_faithfulness"
    image_faithfulness = "image_faithfulness"
    physical_quality = "physical_quality"
    text_rendering = "text_rendering"

    @property
    def header(self) -> str:
        """The header the released checkpoints write (docs/method.md, "Output format")."""
        return _ASPECT_TITLES[self]


_ASPECT_TITLES = {
    Aspect.text_faithfulness: "Text Faithfulness",
    Aspect.image_faithfulness: "Image Faithfulness",
    Aspect.physical_quality: "Physical and Visual Quality",
    Aspect.text_rendering: "Text Rendering",
}


class Task(StrEnum):
    t2i = "t2i"
    edit = "edit"

    @property
    def aspects(self) -> tuple[Aspect, ...]:
        """The aspects of this task's format, in the order the format numbers them."""
        if self is Task.t2i:
            return (Aspect.text_faithfulness, Aspect.physical_quality, Aspect.text_rendering)
        return (Aspect.text_faithfulness, Aspect.image_faithfulness, Aspect.physical_quality, Aspect.text_rendering)


Winner = Literal["A", "B", "tie"]


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


class ImageRef(_Wire):
    """A pointer to an image: graph state and checkpoints hold these, never pixels."""

    kind: Literal["image_ref"] = "image_ref"
    uri: str
    sha256: str
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class AspectAssessment(_Wire):
    """One rubric dimension of a pointwise critique. `score` None means "not applicable" (N/A)."""

    score: float | None
    justification: str = ""

    @field_validator("score")
    @classmethod
    def _in_range(cls, v: float | None) -> float | None:
        if v is not None and not SCORE_MIN <= v <= SCORE_MAX:
            raise ValueError(f"score {v} is outside [{SCORE_MIN}, {SCORE_MAX}]; the parser clamps before building this")
        return v


class _Judgement(_Wire):
    """What a critique and a pairwise judgement share: the request judged, the model's analysis and summary, the raw
    text it came from, and what the parser or backend noticed on the way."""

    task: Task
    request: str = ""
    analysis: str = ""
    summary: str = ""
    raw_text: str = ""
    model: str = ""
    warnings: tuple[str, ...] = ()
    usage: dict[str, int] | None = None
    # The answer hit max_tokens after every score was written: the scores stand, but the text after them (a critique's
    # refined request, above all) is empty or may be cut mid-sentence, so nothing should act on it.
    truncated: bool = False
    # Self-ensembling (`SelfEnsemble`): how many answers the scores are the mean of, and each score's standard
    # deviation over them (keys: aspect values; pairwise `<aspect>:a` and `<aspect>:b`).
    samples: int = 1
    spread: dict[str, float] = Field(default_factory=dict)


class Critique(_Judgement):
    """A parsed pointwise critique: analysis, per-aspect justification and score, summary, optional refinement."""

    kind: Literal["critique"] = "critique"
    assessments: dict[Aspect, AspectAssessment]
    refinement_comments: str = ""
    refined_request: str = ""

    @property
    def scores(self) -> dict[str, float | None]:
        """Aspect value -> score (None for N/A), in the task's format order."""
        return {a.value: self.assessments[a].score for a in self.task.aspects if a in self.assessments}

    @model_validator(mode="after")
    def _scored_where_the_format_requires(self) -> Self:
        _check_required({a: (x.score,) for a, x in self.assessments.items()}, self.task)
        return self


class PairwiseAspect(_Wire):
    score_a: float | None
    score_b: float | None
    winner: Winner | None = None
    justification: str = ""

    @field_validator("score_a", "score_b")
    @classmethod
    def _in_range(cls, v: float | None) -> float | None:
        return AspectAssessment._in_range(v)


def _check_required(scores: Mapping[Aspect, tuple[float | None, ...]], task: Task) -> None:
    """Every aspect of the task's format is judged, and only Text Rendering may be N/A (nothing else has nothing to
    judge): a critique that says otherwise must not exist, or a required N/A would read as a pass."""
    missing = [a.header for a in task.aspects if a not in scores]
    if missing:
        raise ValueError(f"a {task.value} judgement needs every aspect of its format; missing: {', '.join(missing)}")
    na = [a.header for a in task.aspects if a is not Aspect.text_rendering and None in scores[a]]
    if na:
        raise ValueError(f"only Text Rendering may be N/A; N/A given for: {', '.join(na)}")


def decide_pairwise(
    scores_a: Mapping[str, float | None], scores_b: Mapping[str, float | None], tolerance: float = 0.0
) -> Winner:
    """The release's pairwise rule: compare summed scores over aspects both sides scored; Winner lines are ignored."""
    margin = 0.0
    for key, a in scores_a.items():
        b = scores_b.get(key)
        if a is not None and b is not None:
            margin += a - b
    if margin > tolerance:
        return "A"
    if margin < -tolerance:
        return "B"
    return "tie"


class PairwiseJudgement(_Judgement):
    """A parsed pairwise critique. `preferred` follows the release's rule: summed scores decide, Winner lines don't."""

    kind: Literal["pairwise"] = "pairwise"
    aspects: dict[Aspect, PairwiseAspect]

    @property
    def scores_a(self) -> dict[str, float | None]:
        return {a.value: self.aspects[a].score_a for a in self.task.aspects if a in self.aspects}

    @property
    def scores_b(self) -> dict[str, float | None]:
        return {a.value: self.aspects[a].score_b for a in self.task.aspects if a in self.aspects}

    @model_validator(mode="after")
    def _scored_where_the_format_requires(self) -> Self:
        _check_required({a: (x.score_a, x.score_b) for a, x in self.aspects.items()}, self.task)
        return self

    @model_validator(mode="before")
    @classmethod
    def _drop_derived(cls, data: object) -> object:
        # `preferred` is serialised for readers of the JSON but always recomputed from the scores on the way in.
        if isinstance(data, dict) and "preferred" in data:
            data = {k: v for k, v in data.items() if k != "preferred"}
        return data

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented form; mypy rejects decorated properties
    @property
    def preferred(self) -> Winner:
        return decide_pairwise(self.scores_a, self.scores_b)


AbstentionReason = Literal["parse_error", "truncated", "server_error", "timeout", "refused", "too_large"]


class Abstention(_Wire):
    """A backend's honest "no score": returned instead of a made-up number. Keeps the raw text when there is one."""

    kind: Literal["abstention"] = "abstention"
    reason: AbstentionReason
    detail: str = ""
    raw_text: str = ""


class _Request(_Wire):
    """What every request to a critic or teacher names: the task, the user's request, and (editing) the source image."""

    task: Task = Task.t2i
    prompt: str
    source_image: ImageRef | None = None

    @model_validator(mode="after")
    def _source_matches_task(self) -> Self:
        if self.task is Task.edit and self.source_image is None and self._needs_source:
            raise ValueError("an edit request needs source_image (the image before the edit)")
        return self

    _needs_source: ClassVar[bool] = True

    @classmethod
    def like(cls, other: object, **fields: object) -> Self:
        """A `cls` request with every field `other` shares with it by name (task, prompt, images, label, ...) copied
        over, then `fields` on top: e.g. the comparison behind an anchored request, or the request for a pair."""
        shared = {name: getattr(other, name) for name in cls.model_fields if name != "kind" and hasattr(other, name)}
        return cls(**(shared | fields))


CritiquePurpose = Literal["score", "refine"]


class CritiqueRequest(_Request):
    """Critique one image (text-to-image) or one edit result against its source image.

    `purpose`: `score` for a reward or an evaluation, `refine` inside Generate-Critique-Refine. The release asks for
    the two differently (its test-time request puts scores first); the `release` prompt profile follows it."""

    kind: Literal["critique_request"] = "critique_request"
    image: ImageRef
    with_refinement: bool = True
    purpose: CritiquePurpose = "score"


class CompareRequest(_Request):
    """Compare two images generated (or edited) for the same request."""

    kind: Literal["compare_request"] = "compare_request"
    image_a: ImageRef
    image_b: ImageRef


# -- PARROT's teacher requests (docs/concepts.md, "Protocols": answered from these fields, never by matching prompt text) --


class AnchoredRequest(_Request):
    """Phase 1: a pairwise rationale written while the teacher is told the human preference."""

    kind: Literal["anchored_request"] = "anchored_request"
    image_a: ImageRef
    image_b: ImageRef
    label: Winner


class RepredictRequest(_Request):
    """Phase 2: read a rationale without the label (Winner lines hidden) and say which image it shows to be better.
    With `image_a`/`image_b` the teacher also sees the images; without them it judges the text alone."""

    kind: Literal["repredict_request"] = "repredict_request"
    rationale: str
    image_a: ImageRef | None = None
    image_b: ImageRef | None = None
    _needs_source: ClassVar[bool] = False

    @model_validator(mode="after")
    def _both_images_or_none(self) -> Self:
        if (self.image_a is None) != (self.image_b is None):
            raise ValueError("give both image_a and image_b, or neither (re-prediction from the text alone)")
        return self

    @property
    def with_images(self) -> bool:
        return self.image_a is not None


class ProjectRequest(_Request):
    """Pointwise projection: an absolute critique of one image, a validated pairwise rationale as hidden reference."""

    kind: Literal["project_request"] = "project_request"
    image: ImageRef
    reference_rationale: str


TeacherRequest = Annotated[Union[AnchoredRequest, RepredictRequest, ProjectRequest], Field(discriminator="kind")]


CritiqueResult = Annotated[Union[Critique, Abstention], Field(discriminator="kind")]
PairwiseResult = Annotated[Union[PairwiseJudgement, Abstention], Field(discriminator="kind")]
