"""Async client for OpenAI-compatible chat-completions servers: vLLM, SGLang, `transformers serve`, hosted APIs.

The transport (bounded concurrency, timeouts and a total deadline, jittered retries on transient faults only, no
redirects, a cap on the body, the API key kept secret, one or many endpoints) is `plumbing.http.HttpEndpoints`.
Here: a request that keeps timing out becomes `Abstention("timeout")`, an oversized answer `Abstention("too_large")`,
`finish_reason == "length"` a truncated critique or `Abstention("truncated")`, an unparseable text
`Abstention("parse_error")` with the raw text. A server that stays down raises `RewardServerError` after the retry
budget (or abstains with `server_error`, if asked to). Several base URLs (one server per GPU) serve as one critic."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Literal

from rationalrewards.plumbing.choices import choice
from rationalrewards.plumbing.http import HttpEndpoints, Transient
from rationalrewards.plumbing.redact import Secret
from rationalrewards.plumbing.urls import normalise_base_url
from rationalrewards.rewardmodel._release_format import TEST_TIME_MAX_TOKENS
from rationalrewards.rewardmodel.backends.base import Completion, CompletionBackend, MessageBuilder
from rationalrewards.rewardmodel.errors import RewardServerError
from rationalrewards.rewardmodel.prompts import Message, PromptProfile, resolve_profile

__all__ = ["OpenAICompatibleRewardModel", "normalise_base_url"]


class OpenAICompatibleRewardModel(CompletionBackend):
    """A `RewardModel` and `Teacher` over the OpenAI chat-completions API."""

    def __init__(
        self,
        base_url: str | Sequence[str],
        model: str | None = None,
        *,
        api_key: str | None = None,
        credentials: Secret | None = None,
        concurrency: int = 64,
        timeout: float = 120.0,
        max_retries: int = 5,
        retry_max_wait: float = 20.0,
        temperature: float = 0.1,
        max_tokens: int = TEST_TIME_MAX_TOKENS,
        prompts: str = "auto",
        on_server_error: Literal["raise", "abstain"] = "raise",
        deadline: float | None = 300.0,
        max_response_bytes: int = 16 * 2**20,
    ) -> None:
        """`timeout`: seconds for one attempt; `deadline`: seconds for one request with all its retries (None: no
        limit but `max_retries`); `max_response_bytes`: a larger body is refused (the request abstains `too_large`).
        `prompts`: the prompt profile (`house`, `release`, or `auto`: the release's format when the served model's name
        says RationalRewards); `max_tokens`: the release's 20480 by default, so its longest critiques are not cut."""
        if on_server_error not in ("raise", "abstain"):
            raise ValueError("on_server_error must be 'raise' or 'abstain'")
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        if prompts != "auto":
            choice(prompts, PromptProfile, "prompt profile")
        self.http = HttpEndpoints(
            base_url,
            api_key=api_key,
            credentials=credentials,
            concurrency=concurrency,
            timeout=timeout,
            max_retries=max_retries,
            retry_max_wait=retry_max_wait,
            deadline=deadline,
            max_response_bytes=max_response_bytes,
        )
        self.base_url = self.http.endpoints[0].url  # the first; `http.endpoints` lists them all
        self.model = model
        self.concurrency = concurrency
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.prompts = prompts
        self.on_server_error = on_server_error
        self.name = self.http.name + (f" ({model})" if model else "")
        self._model_lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        key = ", api_key=***" if self.http.has_key else ""
        return f"OpenAICompatibleRewardModel(base_url={self.http.name!r}, model={self.model!r}{key})"

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> OpenAICompatibleRewardModel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def served_model(self) -> str:
        """The model name to send: the configured one, else the first the server lists."""
        if self.model:
            return self.model
        if self._model_lock is None:
            self._model_lock = asyncio.Lock()
        async with self._model_lock:
            if not self.model:
                body = await self.http.call("GET", "/models", "listing models")
                try:
                    self.model = str(body["data"][0]["id"])
                except (KeyError, IndexError, TypeError) as e:
                    raise RewardServerError(f"{self.http.name}: /models lists no model; pass model= explicitly") from e
        return self.model

    def prompt_profile(self) -> PromptProfile:
        # The served model's name decides `auto` (the URL does not: a host name says nothing about the weights).
        return resolve_profile(self.prompts, self.model)

    async def _complete_many(self, builders: Sequence[MessageBuilder]) -> list[Completion | RewardServerError]:
        return list(await asyncio.gather(*(self._one(build) for build in builders)))

    async def _one(self, build: MessageBuilder) -> Completion | RewardServerError:
        # Messages are built inside the slot: each carries the images as base64, and building all of a large batch
        # up front would hold every encoded image in memory at once. The model's name comes first: under
        # `prompts="auto"` it decides the prompt profile.
        async with self.http.state().semaphore:
            try:
                model = await self.served_model()
                return await self._post(build(), model)
            except RewardServerError as e:
                return e

    async def _post(self, messages: list[Message], model: str) -> Completion:
        payload = {"model": model, "messages": messages, "temperature": self.temperature, "max_tokens": self.max_tokens}

        async def attempt(url: str, within: float) -> Completion:
            body = await self.http.request(url, "POST", "/chat/completions", json=payload, within=within)
            return _completion_from_body(body, model)

        return await self.http.retrying(attempt, "chat completion")

    async def wait_until_healthy(self, timeout: float = 300.0, interval: float = 0.5) -> None:  # noqa: ASYNC109 - a deadline, not a per-call timeout
        """Poll `/health` (vLLM, SGLang, transformers serve) and `/v1/models` until a server answers 200."""
        await self.http.wait_until_healthy(timeout, interval)


def _completion_from_body(body: Any, model: str) -> Completion:
    try:
        choice = body["choices"][0]
        text = choice["message"]["content"]
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise TypeError(f"message content is {type(text).__name__}, not a string")
    except (KeyError, IndexError, TypeError) as e:
        raise Transient(f"answer is not a chat completion ({type(e).__name__}: {e})") from e
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else None
    usage = {k: int(v) for k, v in usage.items() if isinstance(v, int)} if usage else None
    return Completion(
        text=text, finish_reason=choice.get("finish_reason"), model=str(body.get("model") or model), usage=usage
    )
