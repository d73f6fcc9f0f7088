"""Typed state of the GCR and PARROT graphs.

Plain JSON values only (image refs and model dumps): checkpoints stay small and portable, and `langgraph dev` returns
them as they are. A critique or judgement is stored one way only, as `model_dump(mode="json")` of the typed object;
`critique_of(entry)` reads it back. No torch, diffusers or vllm here.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Annotated, Literal, NotRequired, Required, TypeVar

from pydantic import Field

# typing_extensions' TypedDict, not typing's: pydantic (and so LangGraph's input and output JSON schemas, which Studio
# draws its forms from) accepts typing's only from Python 3.12.
from typing_extensions import TypedDict

from rationalrewards.rewardmodel.schemas import Abstention, Critique, ImageRef, PairwiseJudgement

V = TypeVar("V")
# A model's JSON dump kept as it is and read back through the model (`critique_of`, `judgement_of`): opaque here.
ModelDump = dict[str, object]


class ImageRefDict(TypedDict):
    """`ImageRef.model_dump(mode="json")`."""

    kind: Literal["image_ref"]
    uri: str
    sha256: str
    width: int
    height: int


def image_ref_dict(ref: ImageRef) -> ImageRefDict:
    return ImageRefDict(kind="image_ref", uri=ref.uri, sha256=ref.sha256, width=ref.width, height=ref.height)


def merge_dicts(left: Mapping[str, V] | None, right: Mapping[str, V] | None) -> dict[str, V]:
    """Reducer for keyed records written by parallel nodes (one key per candidate)."""
    return {**(left or {}), **(right or {})}


# ------------------------------------------------------------------ GCR ---------------------------------------------


class GCRInput(TypedDict, total=False):
    """What one loop run is given."""

    prompt: Required[Annotated[str, Field(description="What to generate; with a source image, the edit instruction.")]]
    seed: Annotated[int, Field(description="Seed of the first generation; later rounds derive theirs from it.")]
    source_image: Annotated[
        ImageRefDict | str | None,
        Field(description="For an edit: the source image, as a file path, a file:// URI or a data: URL."),
    ]
    sample_id: str
    tag: str  # the suite's ground-truth tag, carried through for reporting


class GenerateTask(TypedDict):
    """What one `Send` to the generate node carries: one or more candidates for one generator call."""

    prompt: str
    seeds: list[int]
    round: int
    candidates: list[int]
    source_image: ImageRefDict | None
    sample_id: str


class CandidateRecord(TypedDict):
    """One generated image of one round."""

    round: int
    candidate: int
    prompt: str
    seed: int
    image: ImageRefDict
    notes: list[str]  # what the generator says it got wrong (the sketch world), else empty
    generate_ms: float
    cached: bool  # taken from the generation cache rather than generated


class CritiqueEntry(TypedDict):
    """The critic's answer for one candidate: a critique or an abstention (exactly one of the two is set)."""

    critique: ModelDump | None  # `Critique.model_dump(mode="json")`
    abstention: ModelDump | None  # `Abstention.model_dump(mode="json")`
    reward: float | None  # None: abstained, or nothing the policy scores
    passes: bool  # every active aspect at or above the threshold


class RoundRecord(TypedDict):
    round: int
    prompt: str
    candidates: list[str]  # candidate keys of this round
    best: str | None  # the key selected this round
    scored: bool  # whether any candidate of this round was critiqued with a score
    abstentions: int
    reward: float | None


class BestRecord(TypedDict):
    """The image the loop would output now (the best so far under `keep_best`, else the latest)."""

    key: str
    round: int
    candidate: int
    prompt: str
    image: ImageRefDict
    reward: float | None
    critique: ModelDump | None
    reward_note: str  # why `reward` is None ("" when it is set): not re-scored by design, or the critic abstained
    data_url: NotRequired[str]  # the image inline, when the run asked for it (`GCRConfig.inline_best_image`)


class GCRState(GCRInput, total=False):
    task: str
    round: int
    current_prompt: str
    candidates: Annotated[dict[str, CandidateRecord], merge_dicts]  # "r0c1" -> record
    critiques: Annotated[dict[str, CritiqueEntry], merge_dicts]
    rounds: Annotated[list[RoundRecord], operator.add]  # one closed record per round
    generations: Annotated[int, operator.add]
    critique_calls: Annotated[int, operator.add]
    best: BestRecord | None
    stop_reason: str | None


class GCRUpdate(TypedDict, total=False):
    """What a GCR node returns: only the keys it changes (the reducers merge keyed records and append rounds)."""

    task: str
    round: int
    current_prompt: str
    sample_id: str
    candidates: dict[str, CandidateRecord]
    critiques: dict[str, CritiqueEntry]
    rounds: list[RoundRecord]
    generations: int
    critique_calls: int
    best: BestRecord | None
    stop_reason: str | None
    source_image: ImageRefDict | None


class GCROutput(TypedDict, total=False):
    prompt: str
    sample_id: str
    tag: str
    task: str
    best: BestRecord | None
    rounds: list[RoundRecord]
    stop_reason: str
    generations: int
    critique_calls: int


def candidate_key(round_: int, candidate: int) -> str:
    return f"r{round_}c{candidate}"


def critique_entry(answer: Critique | Abstention, reward: float | None, passes: bool) -> CritiqueEntry:
    if isinstance(answer, Abstention):
        return CritiqueEntry(critique=None, abstention=answer.model_dump(mode="json"), reward=None, passes=False)
    return CritiqueEntry(critique=answer.model_dump(mode="json"), abstention=None, reward=reward, passes=passes)


def critique_of(entry: CritiqueEntry | BestRecord | Mapping[str, object] | None) -> Critique | None:
    """The typed critique stored in an entry (None for an abstention or an unscored image)."""
    stored = entry.get("critique") if entry is not None else None
    return Critique.model_validate(stored) if stored else None


# ------------------------------------------------------------------ PARROT ------------------------------------------

RejectReason = Literal[
    "teacher_request_error",  # the teacher rejected the request itself (HTTP 4xx): asking again will not help
    "teacher_error",  # the teacher kept failing (5xx, timeouts) past its retries
    "truncated",  # the rationale was cut at max_tokens
    "unparseable",  # the rationale is not a readable pairwise critique
    "scores_disagree",  # its summed scores prefer another image than the label
    "repredict_disagrees",  # re-read without the label, it supports another image
    "repredict_unreadable",  # the re-prediction gave no readable answer
]
NOT_RETRIED: frozenset[str] = frozenset({"teacher_request_error"})
ParrotStatus = Literal["pending", "kept", "rejected"]
ParrotStage = Literal["anchored", "parse", "filter", "project"]


class Rejection(TypedDict):
    attempt: int
    stage: ParrotStage
    reason: RejectReason
    detail: str
    rationale: str | None


class Projection(TypedDict, total=False):
    critique: ModelDump  # `Critique.model_dump(mode="json")` of the pointwise projection
    error: str  # why the projection of this side failed (the pairwise row is kept anyway)


class ParrotInput(TypedDict):
    pair: ModelDump  # `PreferencePair.to_json()`


class ParrotState(ParrotInput, total=False):
    attempt: int
    rationale: str | None
    judgement: ModelDump | None  # `PairwiseJudgement.model_dump(mode="json")` of the rationale
    repredicted: str | None
    projections: dict[str, Projection]  # "A" / "B"
    status: ParrotStatus
    reason: RejectReason | None
    detail: NotRequired[str | None]
    stage: ParrotStage
    teacher_calls: int
    history: list[Rejection]  # earlier attempts' rationales and reasons


class ParrotUpdate(TypedDict, total=False):
    """What a PARROT node returns: only the keys it changes."""

    attempt: int
    rationale: str | None
    judgement: ModelDump | None
    repredicted: str | None
    projections: dict[str, Projection]
    status: ParrotStatus
    reason: RejectReason | None
    detail: str | None
    stage: ParrotStage
    teacher_calls: int
    history: list[Rejection]


def judgement_of(state: ParrotState | Mapping[str, object]) -> PairwiseJudgement | None:
    stored = state.get("judgement")
    return PairwiseJudgement.model_validate(stored) if stored else None
