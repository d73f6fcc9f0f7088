"""Async client for OpenAI-compatible chat-completions servers: vLLM, SGLang, `transformers serve`, hosted APIs.

Transport rules (the release had none of them): bounded concurrency; a timeout per attempt and a total deadline per
request (retries included); retries with exponential jitter on connection errors, timeouts, 408, 429, 5xx and bodies
that are not UTF-8 JSON only (another 4xx means the request itself is wrong and is raised at once); redirects are not
followed; a body larger than `max_response_bytes` is not read past the limit. A request that keeps timing out becomes
`Abstention("timeout")`, an oversized answer `Abstention("too_large")`, `finish_reason == "length"` a truncated
critique or `Abstention("truncated")`, an unparseable text `Abstention("parse_error")` with the raw text. A server
that stays down raises `RewardServerError` after the retry budget (or abstains with `server_error`, if asked to). JSON
only. The API key is never logged or printed, and is redacted from every error text a server might echo it in."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from urllib.parse import urlparse

import aiohttp
import structlog

from rationalrewards.rewardmodel.backends.base import Completion, CompletionBackend, MessageBuilder
from rationalrewards.rewardmodel.errors import (
    ResponseTooLargeError,
    RewardRequestError,
    RewardServerError,
    RewardTimeoutError,
)
from rationalrewards.rewardmodel.prompts import Message, PromptProfile, check_profile, resolve_profile
from rationalrewards.rewardmodel.redact import redact, register_secret
from rationalrewards.rewardmodel.release_format import TEST_TIME_MAX_TOKENS

log = structlog.get_logger(__name__)
_RETRYABLE_STATUS = {408, 429}
T = TypeVar("T")


class _Transient(Exception):
    """A failure worth another try. Carries what the final error should say."""

    def __init__(self, detail: str, *, timeout: bool = False, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.timeout = timeout
        self.retry_after = retry_after


def normalise_base_url(url: str) -> str:
    """`http://host:port` -> `http://host:port/v1`; a URL with a path is taken as the API root as given."""
    url = url.rstrip("/")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"base_url must be an http(s) URL such as http://127.0.0.1:8000/v1, got {url!r}")
    return url + "/v1" if parsed.path in ("", "/") else url


@dataclass
class _LoopState:
    session: aiohttp.ClientSession
    semaphore: asyncio.Semaphore


class OpenAICompatibleRewardModel(CompletionBackend):
    """A `RewardModel` and `Teacher` over the OpenAI chat-completions API."""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
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
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if timeout <= 0:
            raise ValueError("timeout must be positive (seconds)")
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        if on_server_error not in ("raise", "abstain"):
            raise ValueError("on_server_error must be 'raise' or 'abstain'")
        if deadline is not None and deadline <= 0:
            raise ValueError("deadline must be positive (seconds), or None for no total limit")
        if max_response_bytes < 1024:
            raise ValueError("max_response_bytes must be at least 1024")
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        if prompts != "auto":
            check_profile(prompts)
        self.base_url = normalise_base_url(base_url)
        self.model = model
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_max_wait = retry_max_wait
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.prompts = prompts
        self.on_server_error = on_server_error
        self.deadline = deadline
        self.max_response_bytes = max_response_bytes
        register_secret(api_key)  # every error text that could echo it is redacted
        self.name = self.base_url + (f" ({model})" if model else "")
        self.__api_key = api_key  # name-mangled and kept out of repr and logs
        self._states: dict[int, _LoopState] = {}
        self._model_lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        key = ", api_key=***" if self.__api_key else ""
        return f"OpenAICompatibleRewardModel(base_url={self.base_url!r}, model={self.model!r}{key})"

    # -- connection state, one per event loop (sync wrappers may run several loops over the object's lifetime) --
    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._states.get(id(loop))
        if state is None or state.session.closed:
            headers = {"Authorization": f"Bearer {self.__api_key}"} if self.__api_key else {}
            session = aiohttp.ClientSession(
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(limit=self.concurrency),
                raise_for_status=False,
            )
            state = _LoopState(session=session, semaphore=asyncio.Semaphore(self.concurrency))
            self._states = {k: v for k, v in self._states.items() if not v.session.closed}
            self._states[id(loop)] = state
        return state

    async def aclose(self) -> None:
        state = self._states.pop(id(asyncio.get_running_loop()), None)
        if state is not None:
            await state.session.close()

    async def __aenter__(self) -> OpenAICompatibleRewardModel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- transport --
    def _backoff(self, attempts_made: int, error: BaseException | None) -> float:
        """Full-jitter exponential backoff, stretched to a server's Retry-After hint (both capped)."""
        jitter = random.uniform(0, min(self.retry_max_wait, 0.25 * 2**attempts_made))
        hinted = getattr(error, "retry_after", None) or 0.0
        return max(jitter, min(hinted, self.retry_max_wait))

    def _final_error(self, what: str, error: _Transient, attempts: int) -> RewardServerError:
        message = redact(f"{what} at {self.base_url} failed after {attempts} attempt(s): {error}")
        return RewardTimeoutError(message) if error.timeout else RewardServerError(message)

    async def _retrying(self, attempt: Callable[[float], Awaitable[T]], what: str) -> T:
        """`attempt(seconds)` with retries on transient faults only, within `max_retries` and the total deadline."""
        started = time.monotonic()
        attempts = 0
        while True:
            left = self.deadline - (time.monotonic() - started) if self.deadline is not None else self.timeout
            try:
                return await attempt(min(self.timeout, left))
            except _Transient as error:
                attempts += 1
                left = self.deadline - (time.monotonic() - started) if self.deadline is not None else float("inf")
                if left <= 0:
                    error = _Transient(f"{error} (deadline of {self.deadline:g}s reached)", timeout=True)
                if attempts > self.max_retries or left <= 0:
                    raise self._final_error(what, error, attempts) from error
                log.warning(
                    "reward_server.retry", url=self.base_url, what=what, attempt=attempts, error=redact(str(error))
                )
                await asyncio.sleep(min(self._backoff(attempts, error), left))

    async def _read(self, response: aiohttp.ClientResponse) -> str:
        """The body as text, refused past `max_response_bytes` (read no further) or when it is not UTF-8."""
        too_large = ResponseTooLargeError(
            f"{self.base_url} answered more than {self.max_response_bytes} bytes (HTTP {response.status}); "
            "raise max_response_bytes if that is expected"
        )
        if (response.content_length or 0) > self.max_response_bytes:
            raise too_large
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > self.max_response_bytes:
                raise too_large  # nothing past the limit is read or held
            chunks.append(chunk)
        body = b"".join(chunks)
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise _Transient(f"HTTP {response.status} with a body that is not UTF-8 text") from e

    async def _request(
        self, method: str, path: str, json: dict[str, Any] | None = None, within: float | None = None
    ) -> Any:
        body = None if json is None else _dumps(json)
        headers = None if body is None else {"content-type": "application/json"}
        seconds = within or self.timeout  # aiohttp's own per-request timeout: the attempt's share of the deadline
        try:
            async with self._state().session.request(
                method,
                self.base_url + path,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=seconds),
            ) as response:
                status = response.status
                text = await self._read(response)
                retry_after = _retry_after(response.headers.get("retry-after"))
                location = response.headers.get("location", "")
        except TimeoutError as e:
            raise _Transient(f"no answer within {seconds:g}s", timeout=True) from e
        except aiohttp.ClientError as e:
            raise _Transient(f"connection failed ({type(e).__name__}: {e})") from e
        if status in _RETRYABLE_STATUS or status >= 500:
            raise _Transient(redact(f"HTTP {status}: {text[:200]}"), retry_after=retry_after)
        if 300 <= status < 400:
            raise RewardRequestError(
                f"{method} {self.base_url}{path} was redirected (HTTP {status}) to {location or 'elsewhere'}; redirects "
                "are not followed (another host could receive the request and its key): give the final URL",
                status,
            )
        if status >= 400:
            raise RewardRequestError(
                redact(f"{method} {self.base_url}{path} was rejected with HTTP {status} (not retried): {text[:500]}"),
                status,
            )
        try:
            return _loads(text)
        except ValueError as e:
            raise _Transient(redact(f"HTTP {status} with a body that is not JSON: {text[:200]!r}")) from e

    async def served_model(self) -> str:
        """The model name to send: the configured one, else the first the server lists."""
        if self.model:
            return self.model
        if self._model_lock is None:
            self._model_lock = asyncio.Lock()
        async with self._model_lock:
            if not self.model:
                body = await self._retrying(
                    lambda within: self._request("GET", "/models", within=within), "listing models"
                )
                try:
                    self.model = str(body["data"][0]["id"])
                except (KeyError, IndexError, TypeError) as e:
                    raise RewardServerError(f"{self.base_url}/models lists no model; pass model= explicitly") from e
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
        async with self._state().semaphore:
            try:
                model = await self.served_model()
                return await self._post(build(), model)
            except RewardServerError as e:
                return e

    async def _post(self, messages: list[Message], model: str) -> Completion:
        payload = {"model": model, "messages": messages, "temperature": self.temperature, "max_tokens": self.max_tokens}

        async def attempt(within: float) -> Completion:
            return _completion_from_body(await self._request("POST", "/chat/completions", payload, within), model)

        return await self._retrying(attempt, "chat completion")

    async def wait_until_healthy(self, timeout: float = 300.0, interval: float = 0.5) -> None:  # noqa: ASYNC109 - a deadline, not a per-call timeout
        """Poll `/health` (vLLM, SGLang, transformers serve) and `/v1/models` until one answers 200."""
        root = self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
        deadline = time.monotonic() + timeout
        last = "no attempt"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=min(5.0, timeout))) as probe:
            while True:
                for url in (root + "/health", self.base_url + "/models"):
                    try:
                        async with probe.get(url) as response:
                            if response.status == 200:
                                return
                        last = f"{url} answered HTTP {response.status}"
                    except (TimeoutError, aiohttp.ClientError) as e:
                        last = f"{url}: {type(e).__name__}"
                if time.monotonic() >= deadline:
                    raise RewardServerError(f"reward server at {self.base_url} not healthy after {timeout:g}s ({last})")
                await asyncio.sleep(interval)


def _dumps(payload: dict[str, Any]) -> bytes:
    # A critique request carries several hundred KB of base64 text: orjson encodes it ~10x faster than json.
    try:
        import orjson
    except ImportError:  # optional speed-up
        import json as stdlib_json

        return stdlib_json.dumps(payload).encode()
    return orjson.dumps(payload)


def _loads(text: str) -> Any:
    try:
        import orjson
    except ImportError:  # optional speed-up
        import json as stdlib_json

        return stdlib_json.loads(text)
    return orjson.loads(text)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _completion_from_body(body: Any, model: str) -> Completion:
    try:
        choice = body["choices"][0]
        text = choice["message"]["content"]
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise TypeError(f"message content is {type(text).__name__}, not a string")
    except (KeyError, IndexError, TypeError) as e:
        raise _Transient(f"answer is not a chat completion ({type(e).__name__}: {e})") from e
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else None
    usage = {k: int(v) for k, v in usage.items() if isinstance(v, int)} if usage else None
    return Completion(
        text=text, finish_reason=choice.get("finish_reason"), model=str(body.get("model") or model), usage=usage
    )
