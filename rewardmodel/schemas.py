"""Core wire types of a reasoning reward model (DESIGN.md, "Core types").

Pydantic v2 models, each with a `kind` discriminator so that a mixed list (critiques and abstentions, say) survives a
JSON round trip. This module imports no torch, PIL or HTTP client: graphs and tests load it in milliseconds.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator, model_validator

SCORE_MIN = 1.0
SCORE_MAX = 4.0


class Aspect(str, Enum):
    """A rubric dimension. Values are the stable keys of `Critique.scores`."""

    text_faithfulness = "text_faithfulness"
    image_faithfulness = "image_faithfulness"
    physical_quality = "physical_quality"
    text_rendering = "text_rendering"

    @property
    def title(self) -> str:
        """The header the released checkpoints write (PAPER.md, "Output format")."""
        return _ASPECT_TITLES[self]


_ASPECT_TITLES = {
    Aspect.text_faithfulness: "Text Faithfulness",
    Aspect.image_faithfulness: "Image Faithfulness",
    Aspect.physical_quality: "Physical and Visual Quality",
    Aspect.text_rendering: "Text Rendering",
}


class Task(str, Enum):
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


class Critique(_Wire):
    """A parsed pointwise critique: analysis, per-aspect justification and score, summary, optional refinement."""

    kind: Literal["critique"] = "critique"
    task: Task
    request: str = ""
    assessments: dict[Aspect, AspectAssessment]
    analysis: str = ""
    summary: str = ""
    refinement_comments: str = ""
    refined_request: str = ""
    raw_text: str = ""
    model: str = ""
    warnings: tuple[str, ...] = ()
    usage: dict[str, int] | None = None

    @property
    def scores(self) -> dict[str, float | None]:
        """Aspect value -> score (None for N/A), in the task's format order."""
        return {a.value: self.assessments[a].score for a in self.task.aspects if a in self.assessments}


class PairwiseAspect(_Wire):
    score_a: float | None
    score_b: float | None
    winner: Winner | None = None
    justification: str = ""

    @field_validator("score_a", "score_b")
    @classmethod
    def _in_range(cls, v: float | None) -> float | None:
        return AspectAssessment._in_range(v)


class PairwiseJudgement(_Wire):
    """A parsed pairwise critique. `preferred` follows the release's rule: summed scores decide, Winner lines don't."""

    kind: Literal["pairwise"] = "pairwise"
    task: Task
    request: str = ""
    aspects: dict[Aspect, PairwiseAspect]
    analysis: str = ""
    summary: str = ""
    raw_text: str = ""
    model: str = ""
    warnings: tuple[str, ...] = ()
    usage: dict[str, int] | None = None

    @property
    def scores_a(self) -> dict[str, float | None]:
        return {a.value: self.aspects[a].score_a for a in self.task.aspects if a in self.aspects}

    @property
    def scores_b(self) -> dict[str, float | None]:
        return {a.value: self.aspects[a].score_b for a in self.task.aspects if a in self.aspects}

    @model_validator(mode="before")
    @classmethod
    def _drop_derived(cls, data: object) -> object:
        # `preferred` is serialised for readers of the JSON but always recomputed from the scores on the way in.
        if isinstance(data, dict) and "preferred" in data:
            data = {k: v for k, v in data.items() if k != "preferred"}
        return data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def preferred(self) -> Winner:
        from rationalrewards.rewardmodel.scoring import decide_pairwise

        return decide_pairwise(self.scores_a, self.scores_b)


AbstentionReason = Literal["parse_error", "truncated", "server_error", "timeout", "refused"]


class Abstention(_Wire):
    """A backend's honest "no score": returned instead of a made-up number. Keeps the raw text when there is one."""

    kind: Literal["abstention"] = "abstention"
    reason: AbstentionReason
    detail: str = ""
    raw_text: str = ""


class CritiqueRequest(_Wire):
    """Critique one image (text-to-image) or one edit result against its source image."""

    kind: Literal["critique_request"] = "critique_request"
    task: Task = Task.t2i
    prompt: str
    image: ImageRef
    source_image: ImageRef | None = None
    with_refinement: bool = True

    @model_validator(mode="after")
    def _source_matches_task(self) -> "CritiqueRequest":
        _check_source(self.task, self.source_image)
        return self


class CompareRequest(_Wire):
    """Compare two images generated (or edited) for the same request."""

    kind: Literal["compare_request"] = "compare_request"
    task: Task = Task.t2i
    prompt: str
    image_a: ImageRef
    image_b: ImageRef
    source_image: ImageRef | None = None

    @model_validator(mode="after")
    def _source_matches_task(self) -> "CompareRequest":
        _check_source(self.task, self.source_image)
        return self


def _check_source(task: Task, source_image: ImageRef | None) -> None:
    if task is Task.edit and source_image is None:
        raise ValueError("an edit request needs source_image (the image before the edit)")


CritiqueResult = Annotated[Union[Critique, Abstention], Field(discriminator="kind")]
PairwiseResult = Annotated[Union[PairwiseJudgement, Abstention], Field(discriminator="kind")]
