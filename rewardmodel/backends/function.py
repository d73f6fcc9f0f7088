"""A critic from a plain Python function of the request (`--critic py:module:function`): how a scalar reward, a rule
of one's own or another model's score enters every job as a `RewardModel`.

What the function may return, and what becomes of it:
- a float (or int) in [0, 1]: a scalar reward `r`; it becomes a critique whose active aspects all score `1 + 3r`, so
  the `paper` reward policy reads `r` back (text rendering N/A unless the request asks for text);
- a mapping from aspect names (`"text_faithfulness"`, ...) to 1-4 scores, None for N/A;
- a critique text to parse, a `Critique`, or an `Abstention`.
Anything else (None, a bool, a number outside [0, 1], NaN, another type), an exception, or a function that takes
longer than `timeout` is an `Abstention` with the reason: never a made-up score, never a crashed run. A sync function
runs in a thread of its own, off the event loop, so a function that hangs costs a thread, not the run: waiting for it
ends at the deadline, and closing never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import threading
from collections.abc import Callable, Mapping, Sequence

from rationalrewards.rewardmodel.backends.base import Completion
from rationalrewards.rewardmodel.errors import CritiqueParseError, RewardModelError
from rationalrewards.rewardmodel.parsing import parse_critique
from rationalrewards.rewardmodel.prompts import Message
from rationalrewards.rewardmodel.schemas import (
    Abstention,
    CompareRequest,
    Critique,
    CritiqueRequest,
    PairwiseJudgement,
    TeacherRequest,
)
from rationalrewards.rewardmodel.testing import ScoreMap, critique_from_scores, judgement_from_scores, requests_text

ScoreFunction = Callable[[CritiqueRequest], object]


async def call_off_loop(
    function: Callable[[CritiqueRequest], object],
    request: CritiqueRequest,
    timeout: float,  # noqa: ASYNC109 - a deadline for a thread asyncio.timeout cannot cancel
) -> object:
    """`function(request)` within `timeout` seconds without blocking the event loop: a coroutine function is awaited,
    a plain one runs in a daemon thread (which the process never waits for)."""
    if inspect.iscoroutinefunction(function):
        return await asyncio.wait_for(function(request), timeout)
    loop = asyncio.get_running_loop()
    future: asyncio.Future[object] = loop.create_future()

    def settle(outcome: object, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(outcome)

    def run() -> None:
        outcome: object = None
        error: BaseException | None = None
        try:
            outcome = function(request)
        except BaseException as e:  # noqa: BLE001 - handed back to the caller as the function's failure
            error = e
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting any more
            loop.call_soon_threadsafe(settle, outcome, error)

    threading.Thread(target=run, name="critic-function", daemon=True).start()
    return await asyncio.wait_for(asyncio.shield(future), timeout)


class FunctionRewardModel:
    """A `RewardModel` from a function of the request (see the module docstring). Pairwise comparisons score each
    image with the same function. `teach=` makes it a `Teacher` too (a function of the typed teacher request returning
    the answer text)."""

    def __init__(
        self,
        score: ScoreFunction,
        *,
        complete: Callable[[list[Message]], str] | None = None,
        teach: Callable[[TeacherRequest], str] | None = None,
        name: str = "function-critic",
        timeout: float = 120.0,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive (seconds)")
        self.score = score
        self._complete = complete
        self._teach = teach
        self.name = name
        self.timeout = timeout

    async def _one(self, request: CritiqueRequest) -> Critique | Abstention:
        try:
            result = await call_off_loop(self.score, request, self.timeout)
        except TimeoutError:
            return Abstention(reason="timeout", detail=f"{self.name} took longer than {self.timeout:g}s")
        except Exception as e:  # noqa: BLE001 - the user's function failed: this request abstains, the run goes on
            return Abstention(reason="server_error", detail=f"{self.name} raised {type(e).__name__}: {e}"[:500])
        return self.as_critique(request, result)

    def as_critique(self, request: CritiqueRequest, result: object) -> Critique | Abstention:
        """The function's answer as a critique; one that is not a valid answer is an abstention naming why."""
        if isinstance(result, (Critique, Abstention)):
            return result
        try:
            if isinstance(result, str):
                return parse_critique(result, request.task, request=request.prompt, model=self.name)
            if isinstance(result, Mapping):
                return critique_from_scores(request, _score_map(result), self.name)
            if isinstance(result, bool) or not isinstance(result, int | float):
                kind = "None" if result is None else type(result).__name__
                return self._refused(f"returned {kind}; return a reward in [0, 1], aspect scores or a critique")
            reward = float(result)
            if not math.isfinite(reward) or not 0.0 <= reward <= 1.0:
                return self._refused(f"returned {reward!r}, not a reward in [0, 1]")
            return critique_from_scores(request, _from_reward(request, reward), self.name)
        except CritiqueParseError as e:
            return Abstention(reason="parse_error", detail=str(e), raw_text=e.raw_text)
        except ValueError as e:  # the scores do not make a critique of this task's format
            return Abstention(reason="parse_error", detail=f"{self.name}: {e}")

    def _refused(self, why: str) -> Abstention:
        return Abstention(reason="parse_error", detail=f"{self.name} {why}")

    async def critique(self, requests: Sequence[CritiqueRequest]) -> list[Critique | Abstention]:
        return [await self._one(r) for r in requests]

    async def compare(self, pairs: Sequence[CompareRequest]) -> list[PairwiseJudgement | Abstention]:
        results: list[PairwiseJudgement | Abstention] = []
        for p in pairs:
            sides = [
                await self._one(
                    CritiqueRequest(
                        task=p.task, prompt=p.prompt, image=image, source_image=p.source_image, with_refinement=False
                    )
                )
                for image in (p.image_a, p.image_b)
            ]
            a, b = sides
            if isinstance(a, Abstention):  # an abstaining side abstains for the pair
                results.append(a)
            elif isinstance(b, Abstention):
                results.append(b)
            else:
                results.append(judgement_from_scores(p, a.scores, b.scores, self.name))
        return results

    async def teach(self, requests: Sequence[TeacherRequest]) -> list[Completion]:
        if self._teach is None:
            raise RewardModelError(f"{self.name} was built without a teach= function")
        return [Completion(text=self._teach(r), finish_reason="stop", model=self.name) for r in requests]

    async def complete(self, messages: list[Message]) -> Completion:
        if self._complete is None:
            raise RewardModelError(f"{self.name} was built without a complete= function")
        return Completion(text=self._complete(messages), finish_reason="stop", model=self.name)


def _score_map(result: Mapping[object, object]) -> ScoreMap:
    """Aspect scores as the function gave them: names to numbers (or None); a bool or a non-number is refused."""
    scores: dict[str, float | None] = {}
    for name, value in result.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"the score of {name!r} is {type(value).__name__}, not a number")
        scores[str(name)] = None if value is None else float(value)
    return scores


def _from_reward(request: CritiqueRequest, reward: float) -> ScoreMap:
    score = 1.0 + 3.0 * reward  # the paper's policy maps (mean - 1) / 3 back to `reward`
    return {
        aspect.value: None if aspect.value == "text_rendering" and not requests_text(request.prompt) else score
        for aspect in request.task.aspects
    }


__all__ = ["FunctionRewardModel", "ScoreFunction", "call_off_loop"]
