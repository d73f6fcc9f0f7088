"""PARROT as a LangGraph graph: from one preference pair to filtered rationale training rows (paper: "PARROT").

    START -> anchored (teacher told the label) -> parse -> filter -> project (two pointwise critiques) -> END
                  ^---------------- retry with a new sample (knob; off in `paper`) ------|

Filters (`ParrotConfig.filter`): `repredict` (the teacher re-reads the rationale without the label, with or without
the images, and must name the labelled image; the rationale's Winner lines are hidden from it), `scores` (the summed
scores must prefer the labelled image), or `both`. Rejections keep a typed reason and a detail. Teacher faults (server
errors, timeouts, truncation, garbage) reject the pair with the reason instead of crashing the run; a request the
teacher rejects (HTTP 4xx) is never retried, since sending it again cannot help.

Departures: the paper keeps a pair only on re-prediction; `scores` and `both` are cheaper / stricter options, and a
failed pointwise projection drops only that pointwise row (the validated pairwise row stays).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import InitVar, asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal, cast

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Checkpointer

from rationalrewards.agents.preferences import PreferencePair
from rationalrewards.graphs.state import (
    NOT_RETRIED,
    ParrotInput,
    ParrotStage,
    ParrotState,
    ParrotUpdate,
    Projection,
    Rejection,
    RejectReason,
)
from rationalrewards.graphs.trace import Tracer, tracer_or_file
from rationalrewards.plumbing.choices import choice
from rationalrewards.plumbing.telemetry import annotate_genai, span, traced_invocations, traced_node
from rationalrewards.rewardmodel.backends.base import Completion, Teacher, backend_name
from rationalrewards.rewardmodel.errors import CritiqueParseError, RewardModelError, RewardRequestError
from rationalrewards.rewardmodel.parsing import parse_critique, parse_pairwise
from rationalrewards.rewardmodel.prompts import parse_repredict
from rationalrewards.rewardmodel.schemas import (
    AnchoredRequest,
    ProjectRequest,
    RepredictRequest,
    TeacherRequest,
    decide_pairwise,
)

FilterKind = Literal["repredict", "scores", "both"]
FILTERS: tuple[FilterKind, ...] = ("repredict", "scores", "both")


@dataclass(frozen=True)
class ParrotConfig:
    filter: FilterKind = "repredict"
    repredict_with_images: bool = True
    retries: int = 0  # new anchored samples after a rejection (0 in the paper)
    project: bool = True  # pointwise projection of kept pairs
    score_tolerance: float = 0.0

    def __post_init__(self) -> None:
        choice(self.filter, FilterKind, "filter")
        if self.retries < 0:
            raise ValueError("retries must be 0 or more")
        if self.score_tolerance < 0:
            raise ValueError("score_tolerance must be 0 or more")

    @classmethod
    def preset(cls, name: str = "paper", **overrides: Any) -> ParrotConfig:
        if name != "paper":
            raise ValueError("the only preset is 'paper'; set knobs directly for anything else")
        return replace(cls(), **{k: v for k, v in overrides.items() if v is not None})

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class ParrotContext:
    """The teacher, injected per run. `trace="trace.jsonl"` appends one JSON line per node execution to that file (the
    same as `tracer=Tracer("trace.jsonl")`)."""

    teacher: Teacher
    tracer: Tracer | None = None
    trace: InitVar[str | Path | None] = None

    def __post_init__(self, trace: str | Path | None) -> None:
        object.__setattr__(self, "tracer", tracer_or_file(self.tracer, trace))


CompiledParrotGraph = CompiledStateGraph[ParrotState, ParrotContext, ParrotInput, ParrotState]


class _Rejected(Exception):
    """Raised inside a node to reject the pair; the node turns it into state."""

    def __init__(self, reason: RejectReason, detail: str = "") -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


async def _ask(context: ParrotContext, request: TeacherRequest) -> Completion:
    """One teacher call. Typed errors become typed rejections: a rejected request is not worth retrying."""
    try:
        with span("teacher.teach", backend=backend_name(context.teacher), request=type(request).__name__):
            [completion] = await context.teacher.teach([request])
            annotate_genai(
                "chat",
                model=getattr(context.teacher, "model", None) or backend_name(context.teacher),
                response_model=completion.model or None,
                usages=[completion.usage],
            )
    except RewardRequestError as e:
        raise _Rejected("teacher_request_error", f"{type(e).__name__}: {e}") from e
    except RewardModelError as e:
        raise _Rejected("teacher_error", f"{type(e).__name__}: {e}") from e
    return completion


class ParrotGraph:
    def __init__(self, config: ParrotConfig | None = None) -> None:
        self.config = config or ParrotConfig.preset("paper")
        builder = StateGraph(ParrotState, context_schema=ParrotContext, input_schema=ParrotInput)
        builder.add_node("anchored", traced_node("anchored", self.anchored))
        builder.add_node("parse", traced_node("parse", self.parse))
        builder.add_node("filter", traced_node("filter", self.filter))
        builder.add_node("project", traced_node("project", self.project))
        builder.add_edge(START, "anchored")
        builder.add_conditional_edges("anchored", self._next_after("parse"), ["parse", "anchored", END])
        builder.add_conditional_edges("parse", self._next_after("filter"), ["filter", "anchored", END])
        builder.add_conditional_edges("filter", self._next_after("project"), ["project", "anchored", END])
        builder.add_edge("project", END)
        self.builder = builder

    def compile(self, checkpointer: Checkpointer = None) -> CompiledParrotGraph:
        return traced_invocations(self.builder.compile(checkpointer=checkpointer), "parrot")

    def retryable(self, state: ParrotState) -> bool:
        """A rejected pair gets a new anchored sample unless its reason rules that out or the retries are spent."""
        reason = state.get("reason")
        return reason is not None and reason not in NOT_RETRIED and state.get("attempt", 0) < self.config.retries

    def _next_after(self, following: str) -> Callable[[ParrotState], str]:
        def route(state: ParrotState) -> str:
            if state.get("status") != "rejected":
                return following if following != "project" or self.config.project else END
            return "anchored" if self.retryable(state) else END

        route.__name__ = f"after_{following}"
        return route

    @staticmethod
    def _trace(
        runtime: Runtime[ParrotContext], node: str, state: ParrotState, started: float, **fields: object
    ) -> None:
        if runtime.context.tracer is not None:
            runtime.context.tracer.emit(
                node,
                pair_id=state["pair"]["pair_id"],
                attempt=state.get("attempt", 0),
                ms=round((time.perf_counter() - started) * 1000, 2),
                **fields,
            )

    @staticmethod
    def _reject(state: ParrotState, stage: ParrotStage, rejected: _Rejected) -> ParrotUpdate:
        """The update that rejects the pair at `stage`, its attempt appended to the history."""
        record = Rejection(
            attempt=state.get("attempt", 0),
            stage=stage,
            reason=rejected.reason,
            detail=rejected.detail,
            rationale=state.get("rationale"),
        )
        return ParrotUpdate(
            status="rejected",
            stage=stage,
            reason=rejected.reason,
            detail=rejected.detail,
            history=[*state.get("history", []), record],
        )

    # -- nodes --
    async def anchored(self, state: ParrotState, runtime: Runtime[ParrotContext]) -> ParrotUpdate:
        pair = PreferencePair.from_json(state["pair"])
        attempt = state.get("attempt", -1) + 1 if state.get("status") == "rejected" else state.get("attempt", 0)
        request = AnchoredRequest.like(pair)
        now = ParrotUpdate(
            attempt=attempt,
            status="pending",
            reason=None,
            detail=None,
            rationale=None,
            judgement=None,
            repredicted=None,
            teacher_calls=state.get("teacher_calls", 0) + 1,
            history=state.get("history", []),
        )
        started = time.perf_counter()
        try:
            completion = await _ask(runtime.context, request)
        except _Rejected as e:
            self._trace(runtime, "anchored", _with(state, now), started, error=e.reason)
            return now | self._reject(_with(state, now), "anchored", e)
        self._trace(
            runtime,
            "anchored",
            _with(state, now),
            started,
            chars=len(completion.text),
            finish_reason=completion.finish_reason,
            usage=completion.usage,
        )
        now["rationale"] = completion.text
        if completion.truncated:
            truncated = _Rejected("truncated", "the rationale hit max_tokens")
            return now | self._reject(_with(state, now), "anchored", truncated)
        return now

    async def parse(self, state: ParrotState, runtime: Runtime[ParrotContext]) -> ParrotUpdate:
        pair = PreferencePair.from_json(state["pair"])
        try:
            judgement = parse_pairwise(state.get("rationale") or "", pair.task)
        except CritiqueParseError as e:
            return self._reject(state, "parse", _Rejected("unparseable", str(e)[:300]))
        return ParrotUpdate(judgement=judgement.model_dump(mode="json", exclude={"raw_text"}))

    async def filter(self, state: ParrotState, runtime: Runtime[ParrotContext]) -> ParrotUpdate:
        pair = PreferencePair.from_json(state["pair"])
        rationale = state.get("rationale") or ""
        update = ParrotUpdate()
        try:
            if self.config.filter in ("scores", "both"):
                judgement = parse_pairwise(rationale, pair.task)
                by_scores = decide_pairwise(judgement.scores_a, judgement.scores_b, self.config.score_tolerance)
                if by_scores != pair.label:
                    raise _Rejected("scores_disagree", f"summed scores prefer {by_scores}, label {pair.label}")
            if self.config.filter in ("repredict", "both"):
                # Without images the teacher judges the rationale's text alone.
                hidden = {} if self.config.repredict_with_images else {"image_a": None, "image_b": None}
                request = RepredictRequest.like(pair, rationale=rationale, **hidden)
                update["teacher_calls"] = state.get("teacher_calls", 0) + 1
                started = time.perf_counter()
                completion = await _ask(runtime.context, request)
                predicted = parse_repredict(completion.text)
                self._trace(
                    runtime, "repredict", state, started, predicted=predicted, label=pair.label, usage=completion.usage
                )
                update["repredicted"] = predicted
                if predicted is None:
                    raise _Rejected("repredict_unreadable", completion.text[:200])
                if predicted != pair.label:
                    raise _Rejected("repredict_disagrees", f"predicted {predicted}, label {pair.label}")
        except _Rejected as e:
            return update | self._reject(state, "filter", e)
        return update | ParrotUpdate(status="kept", stage="filter")

    async def project(self, state: ParrotState, runtime: Runtime[ParrotContext]) -> ParrotUpdate:
        pair = PreferencePair.from_json(state["pair"])
        projections: dict[str, Projection] = {}
        calls = state.get("teacher_calls", 0)
        for side, image in (("A", pair.image_a), ("B", pair.image_b)):
            request = ProjectRequest.like(pair, image=image, reference_rationale=state.get("rationale") or "")
            calls += 1
            started = time.perf_counter()
            try:
                completion = await _ask(runtime.context, request)
                if completion.truncated:
                    raise CritiqueParseError("the projection hit max_tokens", completion.text)
                critique = parse_critique(completion.text, pair.task, request=pair.prompt, model=completion.model)
                projections[side] = Projection(critique=critique.model_dump(mode="json"))
            except (_Rejected, CritiqueParseError) as e:
                projections[side] = Projection(error=f"{type(e).__name__}: {str(e)[:200]}")
            self._trace(runtime, "project", state, started, side=side, ok="critique" in projections[side])
        return ParrotUpdate(projections=projections, teacher_calls=calls, status="kept", stage="project")


def _with(state: ParrotState, update: ParrotUpdate) -> ParrotState:
    """The state as it will be once `update` is applied (for tracing and rejection records within a node)."""
    return cast(ParrotState, {**state, **update})


def build_parrot_graph(config: ParrotConfig | None = None, *, checkpointer: Checkpointer = None) -> CompiledParrotGraph:
    return ParrotGraph(config).compile(checkpointer=checkpointer)
