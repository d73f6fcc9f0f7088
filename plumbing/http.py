"""The HTTP transport every served backend shares (critics, teachers, image generators): one or many endpoints.

Transport rules: bounded concurrency; a timeout per attempt and a total deadline per request (retries included);
retries (tenacity's schedule: full-jitter exponential backoff, stretched to a Retry-After hint) on connection errors,
timeouts, 408, 429, 5xx and bodies that are not UTF-8 JSON only
(another 4xx means the request itself is wrong and is raised at once); redirects are not followed; a body larger than
`max_response_bytes` is not read past the limit. The API key is never logged or printed, and is redacted from every
error text a server might echo it in.

Several endpoints (one vLLM server per GPU, say) serve as one: each attempt goes to the healthy endpoint with the
fewest requests in flight; an attempt that failed on one endpoint is retried on another when there is one; an endpoint
that fails `eject_after` attempts in a row is taken out for a cool-down (doubling while it keeps failing, up to
`max_cooldown`) and then given one request to prove itself. When every endpoint is out, the one due back first is used:
the retry budget, not the router, decides when a request has failed.
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from rationalrewards.plumbing.errors import (
    ResponseTooLargeError,
    RewardRequestError,
    RewardServerError,
    RewardTimeoutError,
)
from rationalrewards.plumbing.redact import Secret, redact, register_secret
from rationalrewards.plumbing.urls import base_urls

log = structlog.get_logger(__name__)
_RETRYABLE_STATUS = {408, 429}
T = TypeVar("T")


class Transient(Exception):
    """A failure worth another try. Carries what the final error should say."""

    def __init__(self, detail: str, *, timeout: bool = False, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.timeout = timeout
        self.retry_after = retry_after


@dataclass
class Endpoint:
    """One server and what the router knows about it."""

    url: str
    in_flight: int = 0
    failures_in_a_row: int = 0
    out_until: float = 0.0  # monotonic time before which it gets no requests (0: in service)
    cooldown: float = 0.0
    sent: int = 0
    completed: int = 0

    def available(self, now: float) -> bool:
        return self.out_until <= now


@dataclass
class _LoopState:
    session: aiohttp.ClientSession
    semaphore: asyncio.Semaphore


class HttpEndpoints:
    """JSON over HTTP to one or many equivalent servers, with the rules in the module docstring."""

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        api_key: str | None = None,
        credentials: Secret | None = None,
        concurrency: int = 64,
        timeout: float = 120.0,
        max_retries: int = 5,
        retry_max_wait: float = 20.0,
        deadline: float | None = 300.0,
        max_response_bytes: int = 16 * 2**20,
        eject_after: int = 3,
        cooldown: float = 2.0,
        max_cooldown: float = 60.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if timeout <= 0:
            raise ValueError("timeout must be positive (seconds)")
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        if deadline is not None and deadline <= 0:
            raise ValueError("deadline must be positive (seconds), or None for no total limit")
        if max_response_bytes < 1024:
            raise ValueError("max_response_bytes must be at least 1024")
        if eject_after < 1:
            raise ValueError("eject_after must be at least 1")
        urls, in_url = base_urls(urls)
        if in_url is not None and credentials is not None and in_url != credentials:
            raise ValueError("the URLs carry a user:password and other credentials are given too; give one login")
        credentials = credentials or in_url
        if credentials is not None and api_key:
            raise ValueError("give an API key or a user:password in the URL, not both (they use one header)")
        self.endpoints = [Endpoint(url) for url in urls]
        self.concurrency, self.timeout, self.max_retries = concurrency, timeout, max_retries
        self.retry_max_wait, self.deadline, self.max_response_bytes = retry_max_wait, deadline, max_response_bytes
        self.eject_after, self.base_cooldown, self.max_cooldown = eject_after, cooldown, max_cooldown
        register_secret(api_key)  # every error text that could echo it is redacted
        self.__api_key = api_key  # name-mangled and kept out of repr and logs
        self.__credentials = credentials
        self._states: dict[int, _LoopState] = {}

    @property
    def name(self) -> str:
        return ", ".join(e.url for e in self.endpoints)

    @property
    def has_key(self) -> bool:
        return bool(self.__api_key) or self.__credentials is not None

    # -- connection state, one per event loop (sync wrappers may run several loops over the object's lifetime) --
    def state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._states.get(id(loop))
        if state is None or state.session.closed:
            headers = {"Authorization": f"Bearer {self.__api_key}"} if self.__api_key else {}
            if self.__credentials is not None:  # HTTP Basic from the URL's user:password
                login = self.__credentials.reveal().encode("utf-8")
                headers = {"Authorization": "Basic " + base64.b64encode(login).decode("ascii")}
            session = aiohttp.ClientSession(
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(limit=self.concurrency * len(self.endpoints)),
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

    # -- routing --
    def pick(self, avoid: Endpoint | None = None) -> Endpoint:
        """The endpoint for the next attempt: in service, fewest in flight, not the one that just failed if another
        can take it; when all are out, the one due back first."""
        now = time.monotonic()
        ready = [e for e in self.endpoints if e.available(now)]
        if len(ready) > 1 and avoid in ready:
            ready.remove(avoid)
        if not ready:
            return min(self.endpoints, key=lambda e: e.out_until)
        least = min(e.in_flight for e in ready)
        return random.choice([e for e in ready if e.in_flight == least])  # ties spread, not all to the first

    def _succeeded(self, endpoint: Endpoint) -> None:
        endpoint.failures_in_a_row, endpoint.out_until, endpoint.cooldown = 0, 0.0, 0.0
        endpoint.completed += 1

    def _failed(self, endpoint: Endpoint, error: Transient) -> None:
        now = time.monotonic()
        endpoint.failures_in_a_row += 1
        if endpoint.out_until > now:
            return  # already out: requests sent before it was taken out are failing too; one outage, one ejection
        on_probation = endpoint.out_until > 0  # it was out, came back, and failed again
        if on_probation or endpoint.failures_in_a_row >= self.eject_after:
            endpoint.cooldown = min(self.max_cooldown, endpoint.cooldown * 2 if on_probation else self.base_cooldown)
            endpoint.out_until = now + endpoint.cooldown
            if len(self.endpoints) > 1:
                log.warning("endpoint.ejected", url=endpoint.url, seconds=endpoint.cooldown, error=redact(str(error)))

    # -- requests --
    def _wait(self, state: RetryCallState, failed: Endpoint) -> float:
        """Seconds before the next attempt: none when another endpoint can take it at once; otherwise tenacity's
        full-jitter exponential backoff, stretched to a server's Retry-After hint (both capped), within the deadline."""
        if len(self.endpoints) > 1 and self.pick(avoid=failed) is not failed:
            return 0.0
        error = state.outcome.exception() if state.outcome is not None else None
        jitter = wait_random_exponential(multiplier=0.25, max=self.retry_max_wait)(state)
        hinted = getattr(error, "retry_after", None) or 0.0
        pause = max(jitter, min(hinted, self.retry_max_wait))
        if self.deadline is not None:
            pause = min(pause, max(0.0, self.deadline - (state.seconds_since_start or 0.0)))
        return pause

    async def retrying(self, attempt: Callable[[str, float], Awaitable[T]], what: str) -> T:
        """`attempt(base_url, seconds)` with retries on transient faults only, within `max_retries` and the total
        deadline, each attempt routed to an endpoint (another one after a failure, when there is one). One
        OpenTelemetry span per request (`http.<what>`) records the endpoints tried and the attempts."""
        from rationalrewards.plumbing.telemetry import annotate, span

        with span("http." + what.replace(" ", "_"), endpoints=len(self.endpoints)):
            result, attempts, url = await self._retrying(attempt, what)
            annotate(attempts=attempts, endpoint=url)
            return result

    async def _retrying(self, attempt: Callable[[str, float], Awaitable[T]], what: str) -> tuple[T, int, str]:
        """The retry schedule is tenacity's (which faults, how many attempts, how long to wait, the deadline); the
        routing is ours: each attempt goes to an endpoint picked afresh, avoiding the one that just failed."""
        started = time.monotonic()
        failed: list[Endpoint] = []  # the endpoint of each failed attempt, latest last
        stop: stop_base = stop_after_attempt(self.max_retries + 1)
        if self.deadline is not None:
            stop = stop | stop_after_delay(self.deadline)
        schedule = AsyncRetrying(
            retry=retry_if_exception_type(Transient),
            stop=stop,
            wait=lambda state: self._wait(state, failed[-1]),
            before_sleep=lambda state: log.warning(
                "reward_server.retry",
                url=failed[-1].url,
                what=what,
                attempt=state.attempt_number,
                error=redact(str(state.outcome.exception() if state.outcome else "")),
            ),
            reraise=True,
        )
        try:
            async for trial in schedule:
                with trial:
                    endpoint = self.pick(avoid=failed[-1] if failed else None)
                    left = self.deadline - (time.monotonic() - started) if self.deadline is not None else self.timeout
                    endpoint.in_flight += 1
                    endpoint.sent += 1
                    try:
                        result = await attempt(endpoint.url, min(self.timeout, left))
                    except Transient as error:
                        self._failed(endpoint, error)
                        failed.append(endpoint)
                        raise
                    finally:
                        endpoint.in_flight -= 1
                    self._succeeded(endpoint)
                    return result, trial.retry_state.attempt_number, endpoint.url
        except Transient as error:
            if self.deadline is not None and time.monotonic() - started >= self.deadline:
                error = Transient(f"{error} (deadline of {self.deadline:g}s reached)", timeout=True)
            message = redact(f"{what} at {failed[-1].url} failed after {len(failed)} attempt(s): {error}")
            raise (RewardTimeoutError(message) if error.timeout else RewardServerError(message)) from error
        raise AssertionError("tenacity ended without an outcome")  # unreachable: it returns or raises

    async def read(self, response: aiohttp.ClientResponse, url: str) -> bytes:
        """The body, refused past `max_response_bytes` (read no further)."""
        too_large = ResponseTooLargeError(
            f"{url} answered more than {self.max_response_bytes} bytes (HTTP {response.status}); "
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
        return b"".join(chunks)

    async def request(
        self,
        base_url: str,
        method: str,
        path: str,
        *,
        json: dict[str, object] | None = None,
        data: Any = None,
        within: float | None = None,
    ) -> object:
        """One attempt: the decoded JSON answer, `Transient` for what is worth retrying, `RewardRequestError` else."""
        if json is not None:
            data, headers = dumps(json), {"content-type": "application/json"}
        else:
            headers = None
        seconds = within or self.timeout  # aiohttp's own per-request timeout: the attempt's share of the deadline
        try:
            async with self.state().session.request(
                method,
                base_url + path,
                data=data,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=seconds),
            ) as response:
                status = response.status
                body = await self.read(response, base_url)
                retry_after = _retry_after(response.headers.get("retry-after"))
                location = response.headers.get("location", "")
        except TimeoutError as e:
            raise Transient(f"no answer within {seconds:g}s", timeout=True) from e
        except aiohttp.ClientError as e:
            raise Transient(f"connection failed ({type(e).__name__}: {e})") from e
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise Transient(f"HTTP {status} with a body that is not UTF-8 text") from e
        if status in _RETRYABLE_STATUS or status >= 500:
            raise Transient(redact(f"HTTP {status}: {text[:200]}"), retry_after=retry_after)
        if 300 <= status < 400:
            raise RewardRequestError(
                redact(
                    f"{method} {base_url}{path} was redirected (HTTP {status}) to {_where(location)}; redirects are "
                    "not followed (another host could receive the request and its key): give the final URL"
                ),
                status,
            )
        if status >= 400:
            raise RewardRequestError(
                redact(f"{method} {base_url}{path} was rejected with HTTP {status} (not retried): {text[:500]}"),
                status,
            )
        try:
            return loads(text)
        except ValueError as e:
            raise Transient(redact(f"HTTP {status} with a body that is not JSON: {text[:200]!r}")) from e

    async def call(self, method: str, path: str, what: str, *, json: dict[str, object] | None = None) -> Any:
        """`request` with retries and routing: the decoded JSON answer of whichever endpoint served it."""
        return await self.retrying(lambda url, within: self.request(url, method, path, json=json, within=within), what)

    async def wait_until_healthy(self, timeout: float = 300.0, interval: float = 0.5, *, every: bool = False) -> None:  # noqa: ASYNC109 - a deadline, not a per-call timeout
        """Poll `/health` (vLLM, SGLang, transformers serve) and `/v1/models` until an endpoint answers 200 (with
        `every`: until all do)."""
        deadline = time.monotonic() + timeout
        last: dict[str, str] = {}
        waiting = {e.url for e in self.endpoints}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=min(5.0, timeout))) as probe:
            while True:
                for url in sorted(waiting):
                    root = url[: -len("/v1")] if url.endswith("/v1") else url
                    for probe_url in (root + "/health", url + "/models"):
                        try:
                            async with probe.get(probe_url) as response:
                                if response.status == 200:
                                    waiting.discard(url)
                                    break
                            last[url] = f"{probe_url} answered HTTP {response.status}"
                        except (TimeoutError, aiohttp.ClientError) as e:
                            last[url] = f"{probe_url}: {type(e).__name__}"
                if not waiting or (not every and len(waiting) < len(self.endpoints)):
                    return
                if time.monotonic() >= deadline:
                    states = "; ".join(last.get(url, "no attempt") for url in sorted(waiting))
                    raise RewardServerError(
                        f"server at {', '.join(sorted(waiting))} not healthy after {timeout:g}s ({states})"
                    )
                await asyncio.sleep(interval)


def _where(location: str) -> str:
    """Where a redirect points, for a message: scheme, host and path only (its query or login could carry secrets)."""
    if not location:
        return "elsewhere"
    parts = urlsplit(location)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else parts.path or "elsewhere"


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from model servers; the jittered backoff applies


def dumps(payload: dict[str, object]) -> bytes:
    # A critique request carries several hundred KB of base64 text: orjson encodes it ~10x faster than json.
    try:
        import orjson
    except ImportError:  # optional speed-up
        import json as stdlib_json

        return stdlib_json.dumps(payload).encode()
    return orjson.dumps(payload)


def loads(text: str) -> object:
    try:
        import orjson
    except ImportError:  # optional speed-up
        import json as stdlib_json

        return stdlib_json.loads(text)
    return orjson.loads(text)
