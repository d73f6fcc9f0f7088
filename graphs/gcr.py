"""Generate-Critique-Refine as a LangGraph state machine (paper: "test time, prompt space"; DESIGN.md, "The graphs").

    START -> generate (N candidates, by Send when they take several generator calls) -> critique -> select
          -> refine -> generate ... -> END

Departures from the release, all behind knobs (see `GCRConfig`): several rounds, best-of-N candidates, re-scoring of
refined images, critique memory for the refiner, and keeping the best image so far. The `paper` preset is exactly the
published protocol. A critic that abstains never crashes a thread: it is asked again (`critique_retries`), and if it
still abstains the round records the abstention and the loop keeps the best image it has.

Backends arrive through the context (`GCRContext`); when none is given (e.g. under `langgraph dev`), the sketch world
is used: sketch generator, sketch oracle, critic refiner.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import structlog
from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, Send, interrupt

from rationalrewards.agents.generator import GeneratedImage, ImageGenerator
from rationalrewards.agents.refiner import CriticRefiner, PromptRefiner, RefineHistory, RoundMemory
from rationalrewards.graphs.gcr_config import GCRConfig
from rationalrewards.graphs.state import GCRInput, GCROutput, GCRState, GenerateTask, candidate_key
from rationalrewards.graphs.store import GenerationCache
from rationalrewards.graphs.trace import Tracer
from rationalrewards.rewardmodel.backends.base import RewardModel
from rationalrewards.rewardmodel.schemas import Abstention, Critique, CritiqueRequest, ImageRef, Task
from rationalrewards.rewardmodel.scoring import passes_threshold, reward_or_none

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class GCRContext:
    """Backends and run services, injected per run. Any left as None falls back to the sketch world."""

    generator: ImageGenerator | None = None
    critic: RewardModel | None = None
    refiner: PromptRefiner | None = None
    tracer: Tracer | None = None
    cache: GenerationCache | None = None


@dataclass(frozen=True)
class _Backends:
    generator: ImageGenerator
    critic: RewardModel
    refiner: PromptRefiner
    tracer: Tracer | None
    cache: GenerationCache | None


_DEFAULTS: dict[str, Any] = {}


def _default_backends() -> dict[str, Any]:
    """The sketch world, writing under $RATIONALREWARDS_HOME (default ./runs/default), built once per process."""
    if not _DEFAULTS:
        from rationalrewards.agents.sketch.generator import SketchGenerator
        from rationalrewards.agents.sketch.oracle import SketchOracle

        images = Path(os.environ.get("RATIONALREWARDS_HOME", "runs/default")) / "images"
        _DEFAULTS.update(generator=SketchGenerator(images), critic=SketchOracle(image_dirs=[images]), refiner=CriticRefiner())
    return _DEFAULTS


def _backends(runtime: Runtime[GCRContext] | None) -> _Backends:
    context = runtime.context if runtime is not None and runtime.context is not None else GCRContext()
    missing = context.generator is None or context.critic is None or context.refiner is None
    defaults = _default_backends() if missing else {}
    return _Backends(
        generator=context.generator or defaults["generator"],
        critic=context.critic or defaults["critic"],
        refiner=context.refiner or defaults["refiner"],
        tracer=context.tracer,
        cache=context.cache,
    )


def _thread_id() -> str:
    try:
        return str(get_config().get("configurable", {}).get("thread_id", ""))
    except RuntimeError:
        return ""


def _seed_for(config: GCRConfig, base: int, round_: int, candidate: int) -> int:
    return base + candidate if config.seeds == "same" else base + candidate + 1009 * round_


class GCRGraph:
    """Builds the graph for one configuration. `builder` is the uncompiled StateGraph, for users to extend."""

    def __init__(self, config: GCRConfig | None = None) -> None:
        self.config = config or GCRConfig.preset("paper")
        # One generator call makes every candidate of a round (the usual case: local pipelines batch): generate then
        # follows START and refine by plain edges. Otherwise each call is a `Send`, all of a round's in one superstep.
        self.single_call = self.config.candidates <= self.config.generate_batch
        builder = StateGraph(GCRState, context_schema=GCRContext, input_schema=GCRInput, output_schema=GCROutput)
        # The wiring is lean on purpose: LangGraph spends ~0.2 ms of CPU per superstep here (more under load), about a
        # sketch render, and each conditional-edge function re-reads the state. Routing select and refine by `Command`
        # and sending no `Send` when one call will do cut the graph's own CPU per prompt by a third (1.27 -> 0.86 ms,
        # sketch backends memoised; benchmarks/gcr_overhead.py prints the same figure under load).
        builder.add_node("generate", self.generate)
        builder.add_node("critique", self.critique)
        builder.add_node("select", self._select_node, destinations=("refine", END))
        builder.add_node("refine", self._refine_node, destinations=("generate",))
        if self.single_call:
            builder.add_edge(START, "generate")
        else:
            builder.add_conditional_edges(START, self.fan_out, ["generate"])
        builder.add_edge("generate", "critique")
        builder.add_edge("critique", "select")
        self.builder = builder

    # -- routing --
    def generate_tasks(self, state: GCRState) -> list[GenerateTask]:
        """This round's generator calls: the candidates split into `generate_batch`-sized chunks."""
        prompt = state.get("current_prompt") or state.get("prompt", "")
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("GCR input needs a non-empty 'prompt'")
        round_ = state.get("round", 0)
        base, batch = int(state.get("seed", 0)), self.config.generate_batch
        chunks = [list(range(k, min(k + batch, self.config.candidates))) for k in range(0, self.config.candidates, batch)]
        return [GenerateTask(prompt=prompt, seeds=[_seed_for(self.config, base, round_, k) for k in chunk], round=round_,
                             candidates=chunk, source_image=state.get("source_image"), sample_id=_sample_id(state))
                for chunk in chunks]

    def fan_out(self, state: GCRState) -> list[Send]:
        """One `Send` per generator call of this round. The first round reads the graph input directly (no start node)."""
        return [Send("generate", task) for task in self.generate_tasks(state)]

    def route(self, state: GCRState) -> Literal["refine", "__end__"]:
        return END if state.get("stop_reason") else "refine"

    async def _select_node(self, state: GCRState, runtime: Runtime[GCRContext]) -> Command[Any]:
        update = await self.select(state, runtime)
        return Command(update=update, goto=self.route({**state, **update}))  # type: ignore[typeddict-item]

    async def _refine_node(self, state: GCRState, runtime: Runtime[GCRContext]) -> Command[Any]:
        update = await self.refine(state, runtime)
        return Command(update=update, goto="generate" if self.single_call else self.fan_out({**state, **update}))  # type: ignore[typeddict-item]

    # -- nodes (each returns only the keys it changes) --
    async def generate(self, state: GCRState | GenerateTask, runtime: Runtime[GCRContext]) -> dict[str, Any]:
        """Reached with one `GenerateTask` per `Send`, or with the state when one call makes every candidate."""
        task: GenerateTask = state if "seeds" in state else self.generate_tasks(state)[0]  # type: ignore[assignment]
        backends = _backends(runtime)
        source = ImageRef.model_validate(task["source_image"]) if task.get("source_image") else None
        started = time.perf_counter()
        made: dict[int, GeneratedImage] = {}
        keys: dict[int, str] = {}
        if backends.cache is not None:
            for k, seed in zip(task["candidates"], task["seeds"], strict=True):
                keys[k] = GenerationCache.key(backends.generator.name, task["prompt"], seed, source.sha256 if source else None)
                if (hit := backends.cache.get(keys[k])) is not None:
                    made[k] = hit
        missing = [(k, seed) for k, seed in zip(task["candidates"], task["seeds"], strict=True) if k not in made]
        if missing:
            fresh = await backends.generator.generate([task["prompt"]] * len(missing), [seed for _, seed in missing],
                                                      [source] * len(missing) if source else None)
            for (k, _), image in zip(missing, fresh, strict=True):
                made[k] = image
                if backends.cache is not None:
                    backends.cache.put(keys[k], image)
        elapsed = (time.perf_counter() - started) * 1000 / len(task["candidates"])
        records = {}
        for k, seed in zip(task["candidates"], task["seeds"], strict=True):
            image = made[k]
            cached = k not in dict(missing)
            records[candidate_key(task["round"], k)] = {
                "round": task["round"], "candidate": k, "prompt": task["prompt"], "seed": seed,
                "image": image.image.model_dump(mode="json"), "notes": image.metadata.get("notes", []),
                "generate_ms": round(elapsed, 2), "cached": cached}
            if backends.tracer is not None:
                backends.tracer.emit("generate", thread_id=_thread_id(), sample_id=task["sample_id"], round=task["round"],
                                     candidate=k, prompt=task["prompt"], seed=seed, image=image.image.uri, cached=cached,
                                     ms=round(elapsed, 2))
        return {"candidates": records, "generations": len(missing)}

    async def critique(self, state: GCRState, runtime: Runtime[GCRContext]) -> dict[str, Any]:
        config = self.config
        round_ = state.get("round", 0)
        if round_ > 0 and not config.rescore:
            return {}  # the paper does not score the refined image
        backends = _backends(runtime)
        keys = [candidate_key(round_, k) for k in range(config.candidates)]
        keys = [k for k in keys if k in state.get("candidates", {}) and k not in state.get("critiques", {})]
        source = ImageRef.model_validate(state["source_image"]) if state.get("source_image") else None
        results: dict[str, Critique | Abstention] = {}
        calls = 0
        pending = keys
        for attempt in range(config.critique_retries + 1):
            if not pending:
                break
            requests = [CritiqueRequest(task=_task(state), prompt=state["prompt"],
                                        image=ImageRef.model_validate(state["candidates"][k]["image"]), source_image=source)
                        for k in pending]
            started = time.perf_counter()
            answers = await backends.critic.critique(requests)
            elapsed = (time.perf_counter() - started) * 1000 / max(len(requests), 1)
            calls += len(requests)
            for k, answer in zip(pending, answers, strict=True):
                results[k] = answer
                if backends.tracer is not None:
                    backends.tracer.emit(
                        "critique", thread_id=_thread_id(), sample_id=_sample_id(state), round=round_,
                        candidate=state["candidates"][k]["candidate"], attempt=attempt, ms=round(elapsed, 2),
                        image=state["candidates"][k]["image"]["uri"],
                        scores=answer.scores if isinstance(answer, Critique) else None,
                        abstention=answer.reason if isinstance(answer, Abstention) else None,
                        usage=answer.usage if isinstance(answer, Critique) else None,
                    )
            pending = [k for k in pending if isinstance(results[k], Abstention)]
        written = {}
        for k, answer in results.items():
            if isinstance(answer, Critique):
                written[k] = {"critique": _critique_record(answer), "reward": reward_or_none(answer, config.policy),
                              "passes": passes_threshold(answer, config.threshold)}
            else:
                written[k] = {"abstention": answer.model_dump(mode="json"), "reward": None, "passes": False}
        return {"critiques": written, "critique_calls": calls}

    async def select(self, state: GCRState, runtime: Runtime[GCRContext]) -> dict[str, Any]:
        config = self.config
        round_ = state.get("round", 0)
        keys = [candidate_key(round_, k) for k in range(config.candidates) if candidate_key(round_, k) in state.get("candidates", {})]
        critiques = state.get("critiques", {})
        scored = [k for k in keys if critiques.get(k, {}).get("reward") is not None]
        best_key = max(scored, key=lambda k: (critiques[k]["reward"], -state["candidates"][k]["candidate"])) if scored else None
        chosen = best_key or (keys[0] if keys else None)
        record = {"round": round_, "prompt": state.get("current_prompt") or state["prompt"], "candidates": keys, "best": chosen,
                  "scored": bool(scored), "abstentions": sum("abstention" in critiques.get(k, {}) for k in keys),
                  "reward": critiques[best_key]["reward"] if best_key else None}
        best = state.get("best")
        candidate_best = _best_record(state, chosen) if chosen else None
        if config.keep_best:
            if candidate_best and candidate_best["reward"] is not None and (best is None or best.get("reward") is None or candidate_best["reward"] > best["reward"]):
                best = candidate_best
            elif best is None:
                best = candidate_best
        else:
            best = candidate_best or best
        rounds = list(state.get("rounds", [])) + [record]
        stop = self._stop_reason(config, state, rounds, best, critiques.get(best_key) if best_key else None)
        update: dict[str, Any] = {"rounds": [record], "best": best, "stop_reason": stop}
        if round_ == 0:  # the first round also fixes what the input leaves implicit
            update |= {"task": _task(state).value, "round": 0, "current_prompt": state["prompt"], "sample_id": _sample_id(state)}
        if stop:
            self._trace_finish(runtime, state, stop, best, len(rounds))
        return update

    def _stop_reason(self, config: GCRConfig, state: GCRState, rounds: list[dict[str, Any]], best: dict[str, Any] | None,
                     latest: dict[str, Any] | None) -> str | None:
        round_ = state.get("round", 0)
        if latest is not None and latest.get("passes"):
            return "passed"
        if round_ + 1 >= config.max_rounds:
            return "max_rounds"
        if config.max_generations and state.get("generations", 0) + config.candidates > config.max_generations:
            return "budget"
        if not any(r.get("scored") for r in rounds):
            return "critic_abstained"
        if config.plateau_rounds and len(rounds) > config.plateau_rounds:
            recent = [r["reward"] for r in rounds[-config.plateau_rounds - 1:] if r.get("reward") is not None]
            if len(recent) == config.plateau_rounds + 1 and max(recent[1:]) <= recent[0] + config.plateau_delta:
                return "plateau"
        if round_ > 0 and not config.rescore:
            return "max_rounds"
        return None

    async def refine(self, state: GCRState, runtime: Runtime[GCRContext]) -> dict[str, Any]:
        config = self.config
        backends = _backends(runtime)
        critiques = state.get("critiques", {})
        memory = []
        for record in state.get("rounds", []):
            entry = critiques.get(record["best"] or "", {})
            memory.append(RoundMemory(prompt=record["prompt"], critique=entry.get("critique"), reward=entry.get("reward")))
        history = RefineHistory(original_prompt=state["prompt"], rounds=tuple(memory), task=state["task"])
        started = time.perf_counter()
        proposed = await backends.refiner.refine(history)
        if config.human_in_the_loop:
            decision = interrupt({"sample_id": state.get("sample_id"), "round": state["round"] + 1,
                                  "proposed_prompt": proposed, "previous_prompt": state["current_prompt"]})
            proposed = _human_choice(decision, proposed)
        if backends.tracer is not None:
            backends.tracer.emit("refine", thread_id=_thread_id(), sample_id=state.get("sample_id"), round=state["round"] + 1,
                                 prompt=proposed, previous_prompt=state["current_prompt"], refiner=backends.refiner.name,
                                 ms=round((time.perf_counter() - started) * 1000, 2))
        return {"current_prompt": proposed, "round": state["round"] + 1}

    def _trace_finish(self, runtime: Runtime[GCRContext], state: GCRState, stop: str, best: dict[str, Any] | None, rounds: int) -> None:
        tracer = _backends(runtime).tracer
        if tracer is not None:
            best = best or {}
            generations = state.get("generations", 0)
            tracer.emit("finish", thread_id=_thread_id(), sample_id=_sample_id(state), stop_reason=stop, rounds=rounds,
                        best_image=(best.get("image") or {}).get("uri"), best_reward=best.get("reward"), generations=generations)

    def compile(self, checkpointer: Any = None, **kwargs: Any) -> Any:
        return self.builder.compile(checkpointer=checkpointer, **kwargs)


def _sample_id(state: GCRState) -> str:
    return state.get("sample_id") or _thread_id() or "sample"


def _task(state: GCRState) -> Task:
    return Task.edit if state.get("source_image") else Task.t2i


def _critique_record(critique: Critique) -> dict[str, Any]:
    return {
        "scores": critique.scores,
        "justifications": {a.value: critique.assessments[a].justification for a in critique.task.aspects if a in critique.assessments},
        "summary": critique.summary,
        "refined_request": critique.refined_request,
        "refinement_comments": critique.refinement_comments,
        "model": critique.model,
        "usage": critique.usage,
        "warnings": list(critique.warnings),
    }


def _best_record(state: GCRState, key: str) -> dict[str, Any]:
    candidate = state["candidates"][key]
    entry = state.get("critiques", {}).get(key, {})
    return {"key": key, "round": candidate["round"], "candidate": candidate["candidate"], "prompt": candidate["prompt"],
            "image": candidate["image"], "reward": entry.get("reward"), "critique": entry.get("critique")}


def _human_choice(decision: Any, proposed: str) -> str:
    """Resume values: a string (the prompt to use), {"prompt": ...}, or True / {"approve": True} to accept."""
    if isinstance(decision, str) and decision.strip():
        return decision.strip()
    if isinstance(decision, dict) and str(decision.get("prompt", "")).strip():
        return str(decision["prompt"]).strip()
    return proposed


def build_gcr_graph(config: GCRConfig | None = None, *, checkpointer: Any = None, **compile_kwargs: Any) -> Any:
    """The compiled GCR graph for `config` (default: the paper preset)."""
    return GCRGraph(config).compile(checkpointer=checkpointer, **compile_kwargs)


# `langgraph dev` / langgraph.json export: a short `deep` loop with the sketch world's backends by default.
graph = build_gcr_graph(GCRConfig.preset("deep", max_rounds=3, candidates=2))
