"""The `PromptRefiner` role: turn the critique history into the next prompt.

- `CriticRefiner` uses the latest critique's refined request (the paper's GCR), falling back to the previous prompt
  with a warning when the critic wrote none, or when its answer was cut off (`Critique.truncated`: the refined request
  comes last, so it is empty or may stop mid-sentence).
- `LLMRefiner` asks an LLM (any backend with `complete(messages)`: OpenAI-compatible server or in-process) to rewrite
  the prompt from the whole critique history, told not to repeat fixes that already failed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import structlog

from rationalrewards.rewardmodel.schemas import Critique

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RoundMemory:
    """What one round tried and what the critic said about its best image (None: the critic abstained)."""

    prompt: str
    critique: Critique | None
    reward: float | None


@dataclass(frozen=True)
class RefineHistory:
    original_prompt: str
    rounds: Sequence[RoundMemory] = field(default_factory=tuple)
    task: str = "t2i"

    @property
    def last_prompt(self) -> str:
        return self.rounds[-1].prompt if self.rounds else self.original_prompt

    @property
    def last_critique(self) -> Critique | None:
        return next((r.critique for r in reversed(self.rounds) if r.critique is not None), None)


@runtime_checkable
class PromptRefiner(Protocol):
    name: str

    async def refine(self, history: RefineHistory) -> str: ...


class CriticRefiner:
    name = "critic"

    async def refine(self, history: RefineHistory) -> str:
        critique = history.last_critique
        if critique is not None and critique.truncated:
            log.warning("refiner.truncated_refined_request", prompt=history.last_prompt)
            return history.last_prompt
        refined = critique.refined_request.strip() if critique is not None else ""
        if not refined:
            log.warning("refiner.no_refined_request", prompt=history.last_prompt)
            return history.last_prompt
        return refined


_ANSWER = re.compile(r"(?is)(?:refined\s+prompt|new\s+prompt|prompt)\s*:\s*(.+)$")


class LLMRefiner:
    """Rewrites the prompt with an LLM from the whole critique history."""

    name = "llm"

    def __init__(self, llm: object, *, max_chars: int = 600) -> None:
        if not hasattr(llm, "complete"):
            raise TypeError("LLMRefiner needs a backend with an async complete(messages) method")
        self.llm = llm
        self.max_chars = max_chars

    @staticmethod
    def messages(history: RefineHistory) -> list[dict[str, object]]:
        lines = [
            "You improve prompts for an image generator. The original request and every attempt so far are below, each "
            "with the critic's verdict. Write one new, stand-alone prompt that keeps the original intent and fixes what "
            "the critic found. Do not repeat a fix that already failed: if an earlier rewrite did not help, say it "
            "differently or more explicitly. Answer with one line: `Refined prompt: <prompt>`.",
            f"Original request: {history.original_prompt}",
        ]
        for number, memory in enumerate(history.rounds, start=1):
            verdict = (
                "the critic abstained"
                if memory.critique is None
                else (f"scores {memory.critique.scores}; summary: {memory.critique.summary}")
            )
            lines.append(f"Attempt {number}: prompt: {memory.prompt}\n  {verdict}")
        return [{"role": "user", "content": [{"type": "text", "text": "\n".join(lines)}]}]

    async def refine(self, history: RefineHistory) -> str:
        text = (await self.llm.complete(self.messages(history))).text.strip()
        match = _ANSWER.search(text)
        candidate = (match.group(1) if match else text).strip().strip("`\"' ").splitlines()[0] if text else ""
        if not candidate:
            log.warning("refiner.empty_llm_answer", prompt=history.last_prompt)
            return history.last_prompt
        return candidate[: self.max_chars]
