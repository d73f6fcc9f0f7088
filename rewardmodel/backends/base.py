"""The `RewardModel` protocol and the request -> messages -> typed result path every text-producing backend shares."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from rationalrewards.rewardmodel.errors import CritiqueParseError
from rationalrewards.rewardmodel.images import png_data_url
from rationalrewards.rewardmodel.parsing import parse_critique, parse_pairwise
from rationalrewards.rewardmodel.prompts import Message, pairwise_messages, pointwise_messages
from rationalrewards.rewardmodel.schemas import Abstention, CompareRequest, Critique, CritiqueRequest, PairwiseJudgement

T = TypeVar("T")


@runtime_checkable
class RewardModel(Protocol):
    """A reasoning reward model. Failures come back as `Abstention`s, never as made-up scores."""

    async def critique(self, requests: Sequence[CritiqueRequest]) -> list[Critique | Abstention]: ...

    async def compare(self, pairs: Sequence[CompareRequest]) -> list[PairwiseJudgement | Abstention]: ...

    async def complete(self, messages: list[Message]) -> str: ...


@dataclass(frozen=True)
class Completion:
    """One generated text and what the backend reported about it."""

    text: str
    finish_reason: str | None = None
    model: str = ""
    usage: dict[str, int] | None = None

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


def critique_messages(request: CritiqueRequest) -> list[Message]:
    source = png_data_url(request.source_image) if request.source_image is not None else None
    return pointwise_messages(
        request.prompt,
        png_data_url(request.image),
        request.task,
        source_image_url=source,
        with_refinement=request.with_refinement,
    )


def compare_messages(request: CompareRequest) -> list[Message]:
    source = png_data_url(request.source_image) if request.source_image is not None else None
    return pairwise_messages(
        request.prompt, png_data_url(request.image_a), png_data_url(request.image_b), request.task, source_image_url=source
    )


def _parse_or_abstain(completion: Completion, parse: Callable[[], T]) -> T | Abstention:
    """Parse, or abstain: a cut-off text is `truncated`, an unreadable one `parse_error`; the raw text is kept."""
    if completion.truncated:
        return Abstention(reason="truncated", detail="generation hit max_tokens", raw_text=completion.text)
    try:
        return parse()
    except CritiqueParseError as e:
        return Abstention(reason="parse_error", detail=str(e), raw_text=completion.text)


def critique_from_completion(completion: Completion, request: CritiqueRequest) -> Critique | Abstention:
    result = _parse_or_abstain(
        completion, lambda: parse_critique(completion.text, request.task, request=request.prompt, model=completion.model)
    )
    return result if isinstance(result, Abstention) else result.model_copy(update={"usage": completion.usage})


def judgement_from_completion(completion: Completion, request: CompareRequest) -> PairwiseJudgement | Abstention:
    result = _parse_or_abstain(
        completion, lambda: parse_pairwise(completion.text, request.task, request=request.prompt, model=completion.model)
    )
    return result if isinstance(result, Abstention) else result.model_copy(update={"usage": completion.usage})


async def aclose_backends(*backends: object) -> None:
    """Close what backends hold open on the running loop (HTTP sessions). Safe for backends without `aclose`."""
    for backend in backends:
        close = getattr(backend, "aclose", None)
        if close is not None:
            await close()
