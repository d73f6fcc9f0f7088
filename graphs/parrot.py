"""PARROT as a LangGraph graph: from one preference pair to filtered rationale training rows (paper: "PARROT").

    START -> anchored (teacher told the label) -> parse -> filter -> project (two pointwise critiques) -> export -> END
                  ^------------------ retry with a new sample (knob; off in `paper`) ------|

Filters (`ParrotConfig.filter`): `repredict` (the teacher re-reads the rationale without the label, with or without
the images, and must name the labelled image; the rationale's Winner lines are hidden from it), `scores` (the summed
scores must prefer the labelled image), or `both`. Rejections keep their reason. Teacher faults (server errors,
timeouts, truncation, garbage) reject the pair with the reason instead of crashing the run.

Departures: the paper keeps a pair only on re-prediction; `scores` and `both` are cheaper / stricter options, and a
failed pointwise projection drops only that pointwise row (the validated pairwise row stays).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from rationalrewards.agents.preferences import PreferencePair
from rationalrewards.rewardmodel.backends.base import Completion, RewardModel
from rationalrewards.rewardmodel.errors import CritiqueParseError, RewardModelError
from rationalrewards.rewardmodel.images import png_data_url
from rationalrewards.rewardmodel.parsing import parse_critique, parse_pairwise
from rationalrewards.rewardmodel.prompts import anchored_pairwise_messages, parse_repredict, projection_messages, repredict_messages
from rationalrewards.rewardmodel.scoring import decide_pairwise

FilterKind = Literal["repredict", "scores", "both"]


@dataclass(frozen=True)
class ParrotConfig:
    filter: FilterKind = "repredict"
    repredict_with_images: bool = True
    retries: int = 0  # new anchored samples after a rejection (0 in the paper)
    project: bool = True  # pointwise projection of kept pairs
    score_tolerance: float = 0.0

    def __post_init__(self) -> None:
        if self.filter not in ("repredict", "scores", "both"):
            raise ValueError("filter must be 'repredict', 'scores' or 'both'")
        if self.retries < 0:
            raise ValueError("retries must be 0 or more")
        if self.score_tolerance < 0:
            raise ValueError("score_tolerance must be 0 or more")

    @classmethod
    def preset(cls, name: str = "paper", **overrides: Any) -> ParrotConfig:
        if name != "paper":
            raise ValueError("the only preset is 'paper'; set knobs directly for anything else")
        return cls(**{k: v for k, v in overrides.items() if v is not None})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ParrotContext:
    teacher: RewardModel
    tracer: Any = None


class ParrotState(TypedDict, total=False):
    pair: dict[str, Any]
    attempt: int
    rationale: str | None
    judgement: dict[str, Any] | None
    repredicted: str | None
    projections: dict[str, Any]
    status: str  # "kept" | "rejected"
    reason: str | None
    stage: str  # the phase that decided
    teacher_calls: int
    history: list[dict[str, Any]]  # earlier attempts' rationales and reasons


async def _ask(teacher: RewardModel, messages: list[dict[str, Any]]) -> Completion:
    """One teacher call; uses `complete_raw` where the backend reports truncation."""
    raw = getattr(teacher, "complete_raw", None)
    if raw is not None:
        return await raw(messages)
    return Completion(text=await teacher.complete(messages))


def _urls(pair: PreferencePair) -> tuple[str, str, str | None]:
    source = png_data_url(pair.source_image) if pair.source_image is not None else None
    return png_data_url(pair.image_a), png_data_url(pair.image_b), source


class ParrotGraph:
    def __init__(self, config: ParrotConfig | None = None) -> None:
        self.config = config or ParrotConfig.preset("paper")
        builder = StateGraph(ParrotState, context_schema=ParrotContext)
        builder.add_node("anchored", self.anchored)
        builder.add_node("parse", self.parse)
        builder.add_node("filter", self.filter)
        builder.add_node("project", self.project)
        builder.add_node("export", self.export)
        builder.add_edge(START, "anchored")
        builder.add_conditional_edges("anchored", self._next_after("parse"), ["parse", "anchored", "export"])
        builder.add_conditional_edges("parse", self._next_after("filter"), ["filter", "anchored", "export"])
        builder.add_conditional_edges("filter", self._next_after("project"), ["project", "anchored", "export"])
        builder.add_edge("project", "export")
        builder.add_edge("export", END)
        self.builder = builder

    def compile(self, checkpointer: Any = None) -> Any:
        return self.builder.compile(checkpointer=checkpointer)

    def _next_after(self, following: str) -> Any:
        def route(state: ParrotState) -> str:
            if state.get("status") != "rejected":
                return following if following != "project" or self.config.project else "export"
            retryable = state.get("reason", "").split(":")[0] not in ("teacher_request_error",)
            if retryable and state.get("attempt", 0) < self.config.retries:
                return "anchored"
            return "export"

        route.__name__ = f"after_{following}"
        return route

    @staticmethod
    def _trace(runtime: Runtime[ParrotContext], node: str, state: ParrotState, started: float, **fields: Any) -> None:
        tracer = runtime.context.tracer if runtime.context is not None else None
        if tracer is not None:
            tracer.emit(node, pair_id=state["pair"]["pair_id"], attempt=state.get("attempt", 0),
                        ms=round((time.perf_counter() - started) * 1000, 2), **fields)

    @staticmethod
    def _reject(state: ParrotState, stage: str, reason: str) -> dict[str, Any]:
        history = list(state.get("history", [])) + [{"attempt": state.get("attempt", 0), "stage": stage, "reason": reason,
                                                     "rationale": state.get("rationale")}]
        return {"status": "rejected", "stage": stage, "reason": reason, "history": history}

    # -- nodes --
    async def anchored(self, state: ParrotState, runtime: Runtime[ParrotContext]) -> dict[str, Any]:
        pair = PreferencePair.from_json(state["pair"])
        attempt = state.get("attempt", -1) + 1 if state.get("status") == "rejected" else state.get("attempt", 0)
        url_a, url_b, source = _urls(pair)
        messages = anchored_pairwise_messages(pair.prompt, url_a, url_b, pair.label, pair.task, source_image_url=source)
        base = {"attempt": attempt, "status": "pending", "reason": None, "rationale": None, "judgement": None,
                "repredicted": None, "teacher_calls": state.get("teacher_calls", 0) + 1}
        started = time.perf_counter()
        try:
            completion = await _ask(runtime.context.teacher, messages)
        except RewardModelError as e:
            self._trace(runtime, "anchored", state | base, started, error=type(e).__name__)
            return base | self._reject(state | base, "anchored", f"teacher_error: {type(e).__name__}: {e}")
        self._trace(runtime, "anchored", state | base, started, chars=len(completion.text), finish_reason=completion.finish_reason,
                    usage=completion.usage)
        if completion.truncated:
            return base | {"rationale": completion.text} | self._reject(state | base | {"rationale": completion.text}, "anchored", "truncated")
        return base | {"rationale": completion.text}

    async def parse(self, state: ParrotState, runtime: Runtime[ParrotContext]) -> dict[str, Any]:
        pair = PreferencePair.from_json(state["pair"])
        try:
            judgement = parse_pairwise(state["rationale"] or "", pair.task)
        except CritiqueParseError as e:
            return self._reject(state, "parse", f"unparseable: {str(e)[:160]}")
        return {"judgement": {"scores_a": judgement.scores_a, "scores_b": judgement.scores_b, "preferred": judgement.preferred}}

    async def filter(self, state: ParrotState, runtime: Runtime[ParrotContext]) -> dict[str, Any]:
        pair = PreferencePair.from_json(state["pair"])
        judgement = state["judgement"] or {}
        update: dict[str, Any] = {}
        if self.config.filter in ("scores", "both"):
            by_scores = decide_pairwise(judgement["scores_a"], judgement["scores_b"], self.config.score_tolerance)
            if by_scores != pair.label:
                return self._reject(state, "filter", f"scores_disagree: summed scores prefer {by_scores}, label {pair.label}")
        if self.config.filter in ("repredict", "both"):
            url_a, url_b, _ = _urls(pair) if self.config.repredict_with_images else (None, None, None)
            messages = repredict_messages(pair.prompt, state["rationale"] or "", image_a_url=url_a, image_b_url=url_b)
            update["teacher_calls"] = state.get("teacher_calls", 0) + 1
            started = time.perf_counter()
            try:
                completion = await _ask(runtime.context.teacher, messages)
            except RewardModelError as e:
                return update | self._reject(state, "filter", f"teacher_error: {type(e).__name__}: {e}")
            predicted = parse_repredict(completion.text)
            self._trace(runtime, "repredict", state, started, predicted=predicted, label=pair.label, usage=completion.usage)
            update["repredicted"] = predicted
            if predicted is None:
                return update | self._reject(state, "filter", "repredict_unreadable")
            if predicted != pair.label:
                return update | self._reject(state, "filter", f"repredict_disagrees: predicted {predicted}, label {pair.label}")
        return update | {"status": "kept", "stage": "filter"}

    async def project(self, state: ParrotState, runtime: Runtime[ParrotContext]) -> dict[str, Any]:
        pair = PreferencePair.from_json(state["pair"])
        url_a, url_b, source = _urls(pair)
        projections: dict[str, Any] = {}
        calls = state.get("teacher_calls", 0)
        for side, url in (("A", url_a), ("B", url_b)):
            messages = projection_messages(pair.prompt, url, state["rationale"] or "", pair.task, source_image_url=source)
            calls += 1
            started = time.perf_counter()
            try:
                completion = await _ask(runtime.context.teacher, messages)
                if completion.truncated:
                    raise CritiqueParseError("truncated", completion.text)
                critique = parse_critique(completion.text, pair.task)
                projections[side] = {"text": completion.text, "scores": critique.scores}
            except (RewardModelError, CritiqueParseError) as e:
                projections[side] = {"error": f"{type(e).__name__}: {str(e)[:160]}"}
            self._trace(runtime, "project", state, started, side=side, ok="text" in projections[side])
        return {"projections": projections, "teacher_calls": calls, "status": "kept", "stage": "project"}

    async def export(self, state: ParrotState, runtime: Runtime[ParrotContext]) -> dict[str, Any]:
        tracer = runtime.context.tracer if runtime.context is not None else None
        if tracer is not None:
            tracer.emit("parrot_export", pair_id=state["pair"]["pair_id"], status=state.get("status"), reason=state.get("reason"),
                        stage=state.get("stage"), attempts=state.get("attempt", 0) + 1, teacher_calls=state.get("teacher_calls", 0),
                        ts_done=round(time.time(), 3))
        return {}


def build_parrot_graph(config: ParrotConfig | None = None, *, checkpointer: Any = None) -> Any:
    return ParrotGraph(config).compile(checkpointer=checkpointer)
