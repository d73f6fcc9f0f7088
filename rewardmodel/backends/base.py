"""The `RewardModel` and `Teacher` protocols, the `Completion` record, and `CompletionBackend`: the one base every
text-producing backend (HTTP, in-process) builds on.

A backend that generates text implements a single method, `_complete_many(builders)`; the base turns requests into
messages (`prompts.build_messages`), completions into typed critiques and judgements (the parser), and failures into
abstentions or typed errors, the same way for every backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal, Protocol, TypeVar, runtime_checkable

from rationalrewards.rewardmodel.errors import (
    CritiqueParseError,
    ResponseTooLargeError,
    RewardServerError,
    RewardTimeoutError,
)
from rationalrewards.rewardmodel.parsing import parse_critique, parse_pairwise
from rationalrewards.rewardmodel.prompts import AnyRequest, Message, PromptProfile, build_messages, resolve_profile
from rationalrewards.rewardmodel.schemas import (
    Abstention,
    CompareRequest,
    Critique,
    CritiqueRequest,
    PairwiseJudgement,
    Task,
    TeacherRequest,
)

T = TypeVar("T")
J = TypeVar("J", Critique, PairwiseJudgement)
PARSE_OFF_LOOP_CHARS = 32_000  # texts longer than this (together) are parsed in a worker thread
MAX_TEXT_CHARS = 200_000  # ~50k tokens: ten times the longest critique the release asks for
MessageBuilder = Callable[[], list[Message]]


@dataclass(frozen=True)
class Completion:
    """One generated text and what the backend reported about it (every backend's `complete` returns one)."""

    text: str
    finish_reason: str | None = None
    model: str = ""
    usage: dict[str, int] | None = None

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


@runtime_checkable
class RewardModel(Protocol):
    """A reasoning reward model. Failures come back as `Abstention`s, never as made-up scores."""

    async def critique(self, requests: Sequence[CritiqueRequest]) -> list[Critique | Abstention]: ...

    async def compare(self, pairs: Sequence[CompareRequest]) -> list[PairwiseJudgement | Abstention]: ...

    async def complete(self, messages: list[Message]) -> Completion: ...


@runtime_checkable
class Teacher(Protocol):
    """PARROT's teacher: answers anchored, re-predict and project requests from their typed fields. A teacher that
    cannot answer raises a `RewardModelError` (`RewardRequestError` for a request the server rejects, which PARROT
    does not retry; `RewardServerError` for a fault worth another try)."""

    async def teach(self, requests: Sequence[TeacherRequest]) -> list[Completion]: ...


_TRUNCATED = "the answer hit max_tokens after every score was written; the scores stand"
_CUT_REFINEMENT = (
    "the refined request is missing or may be cut mid-sentence (the answer hit max_tokens): do not act on it"
)


def complete_lines(text: str) -> str:
    """A cut-off text without its last, possibly partial line (`3.` may have been on its way to `3.25`)."""
    cut = text.rfind("\n")
    return text[: cut + 1] if cut >= 0 else ""


def _parse_or_abstain(completion: Completion, parse: Callable[[str], J]) -> J | Abstention:
    """Parse, or abstain with the raw text kept. A cut-off text (`finish_reason == "length"`) is parsed without its
    last line: every score there -> the judgement, marked `truncated`; a score missing -> `Abstention("truncated")`."""
    if not completion.truncated:
        try:
            return parse(completion.text)
        except CritiqueParseError as e:
            return Abstention(reason="parse_error", detail=str(e), raw_text=completion.text)
    try:
        judged: J = parse(complete_lines(completion.text))
    except CritiqueParseError as e:
        return Abstention(
            reason="truncated",
            detail=f"generation hit max_tokens before every score was written ({e})",
            raw_text=completion.text,
        )
    warnings: tuple[str, ...] = (*judged.warnings, _TRUNCATED)
    if isinstance(judged, Critique):
        warnings += (_CUT_REFINEMENT,)
    return judged.model_copy(update={"truncated": True, "raw_text": completion.text, "warnings": warnings})


def critique_from_completion(completion: Completion, request: CritiqueRequest) -> Critique | Abstention:
    result = _parse_or_abstain(
        completion, lambda text: parse_critique(text, request.task, request=request.prompt, model=completion.model)
    )
    return result if isinstance(result, Abstention) else result.model_copy(update={"usage": completion.usage})


def judgement_from_completion(completion: Completion, request: CompareRequest) -> PairwiseJudgement | Abstention:
    return pairwise_from_completion(completion, request.task, request.prompt)


def pairwise_from_completion(completion: Completion, task: Task, prompt: str) -> PairwiseJudgement | Abstention:
    """A pairwise judgement (or abstention) from a completion, given the task and the request it answered."""
    result = _parse_or_abstain(
        completion, lambda text: parse_pairwise(text, task, request=prompt, model=completion.model)
    )
    return result if isinstance(result, Abstention) else result.model_copy(update={"usage": completion.usage})


class CompletionBackend:
    """Base of backends that generate text. Subclasses implement `_complete_many`; the rest is shared.

    `on_server_error`: what `critique` and `compare` do when the server keeps failing past the retry budget: raise
    `RewardServerError` (the default), or return `Abstention("server_error")` so a batch carries on. Timeouts always
    abstain (`timeout`); `teach` and `complete` always raise, so PARROT can tell a rejected request from a fault.
    """

    name: str = "completion-backend"
    on_server_error: Literal["raise", "abstain"] = "raise"
    max_text_chars: int = MAX_TEXT_CHARS  # a longer answer is not stored: the request abstains `too_large`

    async def _complete_many(self, builders: Sequence[MessageBuilder]) -> list[Completion | RewardServerError]:
        """One completion per builder, in order. A server fault that outlasts the retries comes back as the error
        value for that item (the others still finish); a request the server rejects (4xx) raises."""
        raise NotImplementedError

    prompts: str = "house"  # the prompt profile asked for: house, release, or auto (see `prompt_profile`)

    def prompt_profile(self) -> PromptProfile:
        """The profile critic requests are rendered in: as asked, or under `auto` the release's format when the model
        is a RationalRewards checkpoint (`prompts.resolve_profile`). Teacher requests always use the house prompts."""
        return resolve_profile(self.prompts, self.name)

    def messages(self, request: AnyRequest) -> list[Message]:
        """The messages sent for `request`, in this backend's prompt profile."""
        return build_messages(request, profile=self.prompt_profile())

    def _builders(self, requests: Sequence[AnyRequest]) -> list[MessageBuilder]:
        # Built lazily, inside each request's slot: every message carries its images as base64.
        return [partial(self.messages, request) for request in requests]

    def _judged(self, result: Completion | RewardServerError, finish: Callable[[Completion], T]) -> T | Abstention:
        result = self._capped(result)
        if isinstance(result, ResponseTooLargeError):
            return Abstention(reason="too_large", detail=str(result))
        if isinstance(result, RewardTimeoutError):
            return Abstention(reason="timeout", detail=str(result))
        if isinstance(result, RewardServerError):
            if self.on_server_error == "abstain":
                return Abstention(reason="server_error", detail=str(result))
            raise result
        if result.finish_reason == "content_filter":
            return Abstention(
                reason="refused", detail="the server's content filter stopped the answer", raw_text=result.text
            )
        return finish(result)

    async def _finish_all(
        self, results: list[Completion | RewardServerError], finishes: list[Callable[[Completion], T]]
    ) -> list[T | Abstention]:
        """Parse every completion; long texts are parsed off the event loop so other requests keep moving."""

        def parse_all() -> list[T | Abstention]:
            return [self._judged(result, finish) for result, finish in zip(results, finishes, strict=True)]

        size = sum(len(r.text) for r in results if isinstance(r, Completion))
        return await asyncio.to_thread(parse_all) if size > PARSE_OFF_LOOP_CHARS else parse_all()

    async def critique(self, requests: Sequence[CritiqueRequest]) -> list[Critique | Abstention]:
        results = await self._complete_many(self._builders(requests))
        return await self._finish_all(results, [partial(critique_from_completion, request=r) for r in requests])

    async def compare(self, pairs: Sequence[CompareRequest]) -> list[PairwiseJudgement | Abstention]:
        results = await self._complete_many(self._builders(pairs))
        return await self._finish_all(results, [partial(judgement_from_completion, request=p) for p in pairs])

    def _capped(self, result: Completion | RewardServerError) -> Completion | RewardServerError:
        if isinstance(result, Completion) and len(result.text) > self.max_text_chars:
            return ResponseTooLargeError(
                f"{self.name} answered {len(result.text)} characters, more than max_text_chars={self.max_text_chars}"
            )
        return result

    async def teach(self, requests: Sequence[TeacherRequest]) -> list[Completion]:
        return _raise_errors([self._capped(r) for r in await self._complete_many(self._builders(requests))])

    async def complete(self, messages: list[Message]) -> Completion:
        [result] = await self.complete_all([messages])
        return result

    async def complete_all(self, conversations: Sequence[list[Message]]) -> list[Completion]:
        """One completion per conversation, batched as the backend batches requests; a failure raises."""
        builders: list[MessageBuilder] = [partial(list, messages) for messages in conversations]
        return _raise_errors([self._capped(r) for r in await self._complete_many(builders)])


def _raise_errors(results: list[Completion | RewardServerError]) -> list[Completion]:
    completions = []
    for result in results:
        if isinstance(result, RewardServerError):
            raise result
        completions.append(result)
    return completions


def backend_name(backend: object) -> str:
    """How runs, traces and manifests name a backend: its `name`, else its class."""
    return str(getattr(backend, "name", None) or type(backend).__name__)


def prompt_profile_of(backend: object) -> str | None:
    """The prompt profile a backend renders critic requests in (None for backends that write no prompts: the sketch
    oracle, fakes, Python functions). Recorded in traces, summaries and data cards."""
    profile = getattr(backend, "prompt_profile", None)
    return str(profile()) if callable(profile) else None


async def aclose_backends(*backends: object) -> None:
    """Close what backends hold open on the running loop (HTTP sessions). Safe for backends without `aclose`."""
    for backend in backends:
        close = getattr(backend, "aclose", None)
        if close is not None:
            await close()
