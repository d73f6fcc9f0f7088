"""`CritiqueReward`: any `RewardModel` as a reward function in trl's contract.

trl calls reward functions with keywords only: `reward_func(prompts=..., completions=..., **dataset_columns)` and
reads a list with one float (or None) per sample; None marks a sample the function could not score, and trl leaves it
out of its statistics. Here the samples are images: pass them as `completions` (what the policy produced, in trl's
words) or as `images`; editing passes `source_images`. Prompts may be strings or conversations (the last user turn's
text is the request).

A failed critique is an `Abstention` and its reward None: never 0.0, the worst reward the release gives it.

Sync calls run on one background event loop owned by the function, so an HTTP critic keeps one connection pool across
calls; `acall` is the async twin for callers that already run a loop. `close()` (or `with CritiqueReward(...)`) closes
the backend's sessions and stops the loop.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Sequence
from typing import Any

from rationalrewards.plumbing.aio import BackgroundLoop
from rationalrewards.rewardmodel.backends.base import RewardModel, aclose_backends
from rationalrewards.rewardmodel.images import as_image_ref
from rationalrewards.rewardmodel.schemas import Abstention, Critique, CritiqueRequest, Task
from rationalrewards.rewardmodel.scoring import REWARD_POLICIES, RewardPolicy, reward_or_none


def prompt_text(prompt: object) -> str:
    """A plain request from a string prompt or a conversational one (trl's list of role/content messages)."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Sequence):
        for message in reversed(list(prompt)):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    return content
                if isinstance(content, list):
                    return "\n".join(
                        p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
                    )
    raise TypeError(
        f"a prompt must be a string or a list of chat messages with a user turn, got {type(prompt).__name__}"
    )


def _samples(completions: Sequence[object] | None, images: Sequence[object] | None) -> Sequence[object]:
    if images is not None and completions is not None and list(images) != list(completions):
        raise ValueError("pass the images to score as completions= or as images=, not two different lists")
    samples = images if images is not None else completions
    if samples is None:
        raise ValueError("no images to score: pass them as completions= (trl's name) or images=")
    return samples


class CritiqueReward:
    """`reward(prompts=..., completions=..., source_images=None, **kwargs) -> list[float | None]`."""

    __name__ = "critique_reward"  # trl logs reward functions by __name__

    def __init__(
        self, reward_model: RewardModel, policy: RewardPolicy = "paper", *, with_refinement: bool = True
    ) -> None:
        if policy not in REWARD_POLICIES:
            raise ValueError(f"unknown reward policy {policy!r}; choose one of {', '.join(REWARD_POLICIES)}")
        self.reward_model = reward_model
        self.policy: RewardPolicy = policy
        # The release's RL request asks for the refinement section too: the critic then writes what it was trained to.
        self.with_refinement = with_refinement
        self._loop: BackgroundLoop | None = None

    def requests(
        self, prompts: Sequence[object], samples: Sequence[object], source_images: Sequence[object] | None = None
    ) -> list[CritiqueRequest]:
        if len(prompts) != len(samples):
            raise ValueError(f"{len(prompts)} prompts but {len(samples)} images")
        sources: Sequence[object] = source_images if source_images is not None else [None] * len(prompts)
        if len(sources) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(sources)} source images")
        return [
            CritiqueRequest(
                task=Task.edit if source is not None else Task.t2i,
                prompt=prompt_text(prompt),
                image=as_image_ref(sample),
                source_image=as_image_ref(source) if source is not None else None,
                with_refinement=self.with_refinement,
            )
            for prompt, sample, source in zip(prompts, samples, sources, strict=True)
        ]

    async def acritique(
        self,
        prompts: Sequence[object],
        completions: Sequence[object] | None = None,
        *,
        images: Sequence[object] | None = None,
        source_images: Sequence[object] | None = None,
        **_: object,
    ) -> list[Critique | Abstention]:
        """The critiques behind the rewards (per-aspect scores, justifications), abstentions as they are."""
        return await self.reward_model.critique(self.requests(prompts, _samples(completions, images), source_images))

    async def acall(
        self, prompts: Sequence[object], completions: Sequence[object] | None = None, **kwargs: Any
    ) -> list[float | None]:
        """The async twin of `__call__` (same keywords)."""
        results = await self.acritique(prompts, completions, **kwargs)
        return [reward_or_none(result, self.policy) for result in results]

    def __call__(
        self, prompts: Sequence[object], completions: Sequence[object] | None = None, **kwargs: object
    ) -> list[float | None]:
        """One reward per sample; keywords as `acritique` takes them, anything else trl passes is ignored."""
        return self._background().run(self.acall(prompts, completions, **kwargs))

    def submit(
        self,
        prompts: Sequence[object],
        completions: Sequence[object] | None = None,
        *,
        images: Sequence[object] | None = None,
        source_images: Sequence[object] | None = None,
        **_: object,
    ) -> concurrent.futures.Future[list[Critique | Abstention]]:
        """Start critiquing on the function's loop and return a future at once (keywords as `acritique`), so a
        sampler keeps sampling while these images are scored: the RL trainers' overlap."""
        requests = self.requests(prompts, _samples(completions, images), source_images)
        return self._background().submit(self.reward_model.critique(requests))

    def _background(self) -> BackgroundLoop:
        if self._loop is None or self._loop.closed:
            self._loop = BackgroundLoop(name="critique-reward")
        return self._loop

    def close(self) -> None:
        """Close the backend's connections on the loop that opened them, then stop the loop."""
        if self._loop is not None and not self._loop.closed:
            self._loop.run(aclose_backends(self.reward_model))
            self._loop.close()

    def __enter__(self) -> CritiqueReward:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
