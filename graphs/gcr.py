"""Generate-Critique-Refine as a LangGraph state machine (paper: "test time, prompt space"; docs/concepts.md, "The graphs").

    START -> generate (N candidates, by Send when they take several generator calls) -> critique -> select
          -> refine -> generate ... -> END

Departures from the release, all behind knobs (see `GCRConfig`): several rounds, best-of-N candidates, re-scoring of
refined images, critique memory for the refiner, and keeping the best image so far. The `paper` preset is exactly the
published protocol. A critic that abstains never crashes a thread: it is asked again (`critique_retries`), and if it
still abstains the round records the abstention and the loop keeps the best image it has.

Backends arrive through the context (`GCRContext`), required and never defaulted: either per run
(`graph.ainvoke(..., context=GCRContext(...))`) or bound when the graph is built (`GCRGraph(config, backends=...)`,
what `graphs/dev.py` does for `langgraph dev`). Nothing is compiled at import.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import InitVar, dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import structlog
from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Checkpointer, Command, Send, interrupt

from rationalrewards.agents.generator import GeneratedImage, ImageGenerator
from rationalrewards.agents.refiner import CriticRefiner, PromptRefiner, RefineHistory, RoundMemory
from rationalrewards.graphs.gcr_config import GCRConfig
from rationalrewards.graphs.state import (
    BestRecord,
    CandidateRecord,
    CritiqueEntry,
    GCRInput,
    GCROutput,
    GCRState,
    GCRUpdate,
    GenerateTask,
    ImageRefDict,
    RoundRecord,
    candidate_key,
    critique_entry,
    critique_of,
    image_ref_dict,
)
from rationalrewards.graphs.store import GenerationCache
from rationalrewards.graphs.trace import Tracer, tracer_or_file
from rationalrewards.plumbing.telemetry import annotate_genai, span, traced_invocations, traced_node
from rationalrewards.rewardmodel.backends.base import RewardModel, backend_name, prompt_profile_of
from rationalrewards.rewardmodel.errors import RewardModelError
from rationalrewards.rewardmodel.images import as_image_ref, png_data_url
from rationalrewards.rewardmodel.schemas import Abstention, Critique, CritiqueRequest, ImageRef, Task
from rationalrewards.rewardmodel.scoring import passes_threshold, reward_or_none

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class GCRContext:
    """Backends and run services, injected per run. A generator and a critic are required; the refiner defaults to the
    critique's own refined request (`CriticRefiner`), as in the paper. `trace="trace.jsonl"` appends one JSON line per
    node execution to that file (the same as `tracer=Tracer("trace.jsonl")`)."""

    generator: ImageGenerator
    critic: RewardModel
    refiner: PromptRefiner = field(default_factory=CriticRefiner)
    tracer: Tracer | None = None
    cache: GenerationCache | None = None
    trace: InitVar[str | Path | None] = None

    def __post_init__(self, trace: str | Path | None) -> None:
        object.__setattr__(self, "tracer", tracer_or_file(self.tracer, trace))


CompiledGCRGraph = CompiledStateGraph[GCRState, GCRContext, GCRInput, GCROutput]


class MissingBackendsError(RewardModelError):
    """The graph was run without backends: no context given and none bound when it was built."""


def _thread_id() -> str:
    try:
        return str(get_config().get("configurable", {}).get("thread_id", ""))
    except RuntimeError:
        return ""


def _seed_for(config: GCRConfig, base: int, round_: int, candidate: int) -> int:
    return base + candidate if config.seeds == "same" else base + candidate + 1009 * round_


class GCRGraph:
    """Builds the graph for one configuration. `builder` is the uncompiled StateGraph, for users to extend."""

    def __init__(
        self, config: GCRConfig | None = None, *, backends: GCRContext | None = None, settings: type | None = None
    ) -> None:
        """`settings`: with bound `backends`, the schema a server shows for a run's context (per-run settings that the
        graph factory reads, as `graphs/dev.py` does); the nodes then use the bound backends."""
        self.config = config or GCRConfig.preset("paper")
        self.bound = backends  # used when a run passes no context (e.g. under `langgraph dev`)
        # One generator call makes every candidate of a round (the usual case: local pipelines batch): generate then
        # follows START and refine by plain edges. Otherwise each call is a `Send`, all of a round's in one superstep.
        self.single_call = self.config.candidates <= self.config.generate_batch
        # A graph with bound backends declares no context schema: servers such as `langgraph dev` build the declared
        # schema from each run's (empty) context, which required backends cannot allow. A run may still pass one.
        # (Typed as GCRContext either way: the nodes only ever read a GCRContext, see `backends`.)
        context_schema = cast("type[GCRContext] | None", settings if backends is not None else GCRContext)
        builder = StateGraph(GCRState, context_schema=context_schema, input_schema=GCRInput, output_schema=GCROutput)
        # The wiring is lean on purpose: LangGraph spends ~0.2 ms of CPU per superstep here (more under load), about a
        # sketch render, and each conditional-edge function re-reads the state. Routing select and refine by `Command`
        # and sending no `Send` when one call will do cut the graph's own CPU per prompt by a third (1.27 -> 0.86 ms,
        # sketch backends memoised; benchmarks/gcr_overhead.py prints the same figure under load).
        builder.add_node("generate", traced_node("generate", self.generate))
        builder.add_node("critique", traced_node("critique", self.critique))
        builder.add_node("select", traced_node("select", self._select_node), destinations=("refine", END))
        builder.add_node("refine", traced_node("refine", self._refine_node), destinations=("generate",))
        if self.single_call:
            builder.add_edge(START, "generate")
        else:
            builder.add_conditional_edges(START, self.fan_out, ["generate"])
        builder.add_edge("generate", "critique")
        builder.add_edge("critique", "select")
        self.builder = builder

    def backends(self, runtime: Runtime[GCRContext] | None) -> GCRContext:
        given = runtime.context if runtime is not None else None
        context = given if isinstance(given, GCRContext) else self.bound
        if context is None:
            raise MissingBackendsError(
                "no backends: run the graph with context=GCRContext(generator=..., critic=..., refiner=...), or build it "
                "with GCRGraph(config, backends=GCRContext(...))"
            )
        return context

    # -- routing --
    def generate_tasks(self, state: GCRState) -> list[GenerateTask]:
        """This round's generator calls: the candidates split into `generate_batch`-sized chunks."""
        prompt = state.get("current_prompt") or state.get("prompt", "")
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("GCR input needs a non-empty 'prompt'")
        round_ = state.get("round", 0)
        base, batch = int(state.get("seed", 0)), self.config.generate_batch
        chunks = [
            list(range(k, min(k + batch, self.config.candidates))) for k in range(0, self.config.candidates, batch)
        ]
        return [
            GenerateTask(
                prompt=prompt,
                seeds=[_seed_for(self.config, base, round_, k) for k in chunk],
                round=round_,
                candidates=chunk,
                source_image=_source_dict(state),
                sample_id=_sample_id(state),
            )
            for chunk in chunks
        ]

    def fan_out(self, state: GCRState) -> list[Send]:
        """One `Send` per generator call of this round. The first round reads the graph input directly (no start node)."""
        return [Send("generate", task) for task in self.generate_tasks(state)]

    def route(self, state: GCRState) -> Literal["refine", "__end__"]:
        return "__end__" if state.get("stop_reason") else "refine"

    async def _select_node(self, state: GCRState, runtime: Runtime[GCRContext]) -> Command[str]:
        update = await self.select(state, runtime)
        return Command(update=update, goto=self.route(cast(GCRState, {**state, **update})))

    async def _refine_node(self, state: GCRState, runtime: Runtime[GCRContext]) -> Command[str]:
        update = await self.refine(state, runtime)
        return Command(
            update=update, goto="generate" if self.single_call else self.fan_out(cast(GCRState, {**state, **update}))
        )

    # -- nodes (each returns only the keys it changes) --
    async def generate(self, state: GCRState | GenerateTask, runtime: Runtime[GCRContext]) -> GCRUpdate:
        """Reached with one `GenerateTask` per `Send`, or with the state when one call makes every candidate."""
        task = cast(GenerateTask, state) if "seeds" in state else self.generate_tasks(state)[0]
        backends = self.backends(runtime)
        source = ImageRef.model_validate(task["source_image"]) if task.get("source_image") else None
        started = time.perf_counter()
        made, fresh = await _generate_cached(backends, task, source)
        elapsed = round((time.perf_counter() - started) * 1000 / len(task["candidates"]), 2)
        records: dict[str, CandidateRecord] = {}
        for k, seed in zip(task["candidates"], task["seeds"], strict=True):
            image, cached = made[k], k not in fresh
            records[candidate_key(task["round"], k)] = CandidateRecord(
                round=task["round"],
                candidate=k,
                prompt=task["prompt"],
                seed=seed,
                image=image_ref_dict(image.image),
                notes=list(image.metadata.get("notes", [])),
                generate_ms=elapsed,
                cached=cached,
            )
            if backends.tracer is not None:
                backends.tracer.emit(
                    "generate",
                    thread_id=_thread_id(),
                    sample_id=task["sample_id"],
                    round=task["round"],
                    candidate=k,
                    prompt=task["prompt"],
                    seed=seed,
                    image=image.image.uri,
                    cached=cached,
                    ms=elapsed,
                )
        # Every image of the round counts, cached or not: a resumed thread counts what a clean run counts.
        return GCRUpdate(candidates=records, generations=len(records))

    async def critique(self, state: GCRState, runtime: Runtime[GCRContext]) -> GCRUpdate:
        config = self.config
        round_ = state.get("round", 0)
        if round_ > 0 and not config.rescore:
            return GCRUpdate()  # the paper does not score the refined image
        backends = self.backends(runtime)
        candidates, done = state.get("candidates", {}), state.get("critiques", {})
        pending = [
            key for k in range(config.candidates) if (key := candidate_key(round_, k)) in candidates and key not in done
        ]
        source_dict = _source_dict(state)
        source = ImageRef.model_validate(source_dict) if source_dict else None
        results: dict[str, Critique | Abstention] = {}
        calls = 0
        for attempt in range(config.critique_retries + 1):  # an abstaining critic is asked again
            if not pending:
                break
            requests = [
                CritiqueRequest(
                    task=_task(state),
                    prompt=state["prompt"],
                    source_image=source,
                    image=ImageRef.model_validate(candidates[k]["image"]),
                    purpose="refine",
                )
                for k in pending
            ]
            started = time.perf_counter()
            with span("critic.critique", backend=backend_name(backends.critic), requests=len(requests)):
                answers = await backends.critic.critique(requests)
                annotate_genai("chat", **_model_fields(backends.critic, answers))
            elapsed = round((time.perf_counter() - started) * 1000 / len(requests), 2)
            calls += len(requests)
            for k, answer in zip(pending, answers, strict=True):
                results[k] = answer
                if backends.tracer is not None:
                    backends.tracer.emit(
                        "critique",
                        thread_id=_thread_id(),
                        sample_id=_sample_id(state),
                        round=round_,
                        candidate=candidates[k]["candidate"],
                        attempt=attempt,
                        ms=elapsed,
                        image=candidates[k]["image"]["uri"],
                        prompts=prompt_profile_of(backends.critic),
                        **_trace_fields(answer),
                    )
            pending = [k for k in pending if isinstance(results[k], Abstention)]
        written = {
            k: critique_entry(
                answer,
                reward_or_none(answer, config.policy) if isinstance(answer, Critique) else None,
                isinstance(answer, Critique) and passes_threshold(answer, config.threshold, config.stop_rule),
            )
            for k, answer in results.items()
        }
        return GCRUpdate(critiques=written, critique_calls=calls)

    async def select(self, state: GCRState, runtime: Runtime[GCRContext]) -> GCRUpdate:
        config = self.config
        round_ = state.get("round", 0)
        candidates, critiques = state.get("candidates", {}), state.get("critiques", {})
        keys = [key for k in range(config.candidates) if (key := candidate_key(round_, k)) in candidates]
        scored = [k for k in keys if k in critiques and critiques[k]["reward"] is not None]
        best_key = max(scored, key=lambda k: (critiques[k]["reward"], -candidates[k]["candidate"])) if scored else None
        chosen = best_key or (keys[0] if keys else None)
        record = RoundRecord(
            round=round_,
            prompt=state.get("current_prompt") or state["prompt"],
            candidates=keys,
            best=chosen,
            scored=bool(scored),
            abstentions=sum(k in critiques and critiques[k]["abstention"] is not None for k in keys),
            reward=critiques[best_key]["reward"] if best_key else None,
        )
        best = self._keep(state.get("best"), _best_record(state, chosen, config.rescore) if chosen else None)
        rounds = list(state.get("rounds", [])) + [record]
        stop = self._stop_reason(config, state, rounds, critiques.get(best_key) if best_key else None)
        update = GCRUpdate(rounds=[record], best=best, stop_reason=stop)
        if round_ == 0:  # the first round also fixes what the input leaves implicit
            update["task"], update["round"] = _task(state).value, 0
            update["current_prompt"], update["sample_id"] = state["prompt"], _sample_id(state)
            update["source_image"] = _source_dict(state)  # read once: later rounds find the ref
        if stop and best is not None and config.inline_best_image:
            update["best"] = best = BestRecord(**best, data_url=png_data_url(ImageRef.model_validate(best["image"])))
        if stop:
            self._trace_finish(runtime, state, stop, best, len(rounds))
        return update

    def _keep(self, best: BestRecord | None, latest: BestRecord | None) -> BestRecord | None:
        """The image to output: the latest round's pick, or under `keep_best` the higher-rewarded of it and the best."""
        if not self.config.keep_best:
            return latest or best
        if best is None:
            return latest
        if (
            latest is not None
            and latest["reward"] is not None
            and (best["reward"] is None or latest["reward"] > best["reward"])
        ):
            return latest
        return best

    def _stop_reason(
        self, config: GCRConfig, state: GCRState, rounds: list[RoundRecord], latest: CritiqueEntry | None
    ) -> str | None:
        round_ = state.get("round", 0)
        if latest is not None and latest["passes"]:
            return "passed"
        if round_ + 1 >= config.max_rounds:
            return "max_rounds"
        if config.max_generations and state.get("generations", 0) + config.candidates > config.max_generations:
            return "budget"
        if not any(r["scored"] for r in rounds):
            return "critic_abstained"
        if config.plateau_rounds and len(rounds) > config.plateau_rounds:
            recent = [reward for r in rounds[-config.plateau_rounds - 1 :] if (reward := r["reward"]) is not None]
            if len(recent) == config.plateau_rounds + 1 and max(recent[1:]) <= recent[0] + config.plateau_delta:
                return "plateau"
        if round_ > 0 and not config.rescore:
            return "max_rounds"
        return None

    async def refine(self, state: GCRState, runtime: Runtime[GCRContext]) -> GCRUpdate:
        config = self.config
        backends = self.backends(runtime)
        critiques = state.get("critiques", {})
        memory = [
            RoundMemory(
                prompt=record["prompt"],
                critique=critique_of(entry := critiques.get(record["best"] or "")),
                reward=entry["reward"] if entry else None,
            )
            for record in state.get("rounds", [])
        ]
        history = RefineHistory(original_prompt=state["prompt"], rounds=tuple(memory), task=state["task"])
        started = time.perf_counter()
        with span("refiner.refine", backend=backend_name(backends.refiner)):
            proposed = await backends.refiner.refine(history)
        if config.human_in_the_loop:
            decision = interrupt(
                {
                    "sample_id": state.get("sample_id"),
                    "round": state["round"] + 1,
                    "proposed_prompt": proposed,
                    "previous_prompt": state["current_prompt"],
                }
            )
            proposed = _human_choice(decision, proposed)
        if backends.tracer is not None:
            backends.tracer.emit(
                "refine",
                thread_id=_thread_id(),
                sample_id=state.get("sample_id"),
                round=state["round"] + 1,
                prompt=proposed,
                previous_prompt=state["current_prompt"],
                refiner=backends.refiner.name,
                ms=round((time.perf_counter() - started) * 1000, 2),
            )
        return GCRUpdate(current_prompt=proposed, round=state["round"] + 1)

    def _trace_finish(
        self, runtime: Runtime[GCRContext], state: GCRState, stop: str, best: BestRecord | None, rounds: int
    ) -> None:
        tracer = self.backends(runtime).tracer
        if tracer is not None:
            tracer.emit(
                "finish",
                thread_id=_thread_id(),
                sample_id=_sample_id(state),
                stop_reason=stop,
                rounds=rounds,
                best_image=best["image"]["uri"] if best else None,
                best_reward=best["reward"] if best else None,
                generations=state.get("generations", 0),
            )

    def compile(
        self, checkpointer: Checkpointer = None, *, name: str | None = None, debug: bool = False
    ) -> CompiledGCRGraph:
        compiled = self.builder.compile(checkpointer=checkpointer, name=name, debug=debug)
        return traced_invocations(compiled, name or "gcr")


def _sample_id(state: GCRState) -> str:
    return state.get("sample_id") or _thread_id() or "sample"


def _source_dict(state: GCRState) -> ImageRefDict | None:
    """The input's source image as a ref: given as a ref, or (from Studio, an SDK client, a tool) as a file path, a
    `file://` URI or a `data:` URL, read through the image intake."""
    value = state.get("source_image")
    if value is None or value == "":
        return None
    if isinstance(value, dict) and value.get("kind") == "image_ref":
        return value
    return image_ref_dict(as_image_ref(value, "source_image"))


def _task(state: GCRState) -> Task:
    return Task.edit if state.get("source_image") else Task.t2i


def _model_fields(backend: object, answers: Sequence[Critique | Abstention]) -> dict[str, Any]:
    """The GenAI attributes of a backend call: the model asked for, the one that answered, the tokens it reported."""
    judged = [a for a in answers if not isinstance(a, Abstention)]
    answered = next((a.model for a in judged if a.model), None)
    return {
        "model": getattr(backend, "model", None) or backend_name(backend),
        "response_model": answered,
        "usages": [a.usage for a in judged],
    }


def _trace_fields(answer: Critique | Abstention) -> dict[str, object]:
    if isinstance(answer, Abstention):
        return {"scores": None, "abstention": answer.reason, "usage": None}
    return {"scores": answer.scores, "abstention": None, "usage": answer.usage, "truncated": answer.truncated}


async def _generate_cached(
    backends: GCRContext, task: GenerateTask, source: ImageRef | None
) -> tuple[dict[int, GeneratedImage], set[int]]:
    """Every candidate of one generator call, from the generation cache where possible: (images by candidate, the
    candidates generated now)."""
    made: dict[int, GeneratedImage] = {}
    keys: dict[int, str] = {}
    seeds = dict(zip(task["candidates"], task["seeds"], strict=True))
    if backends.cache is not None:
        for k, seed in seeds.items():
            keys[k] = GenerationCache.key(
                backends.generator.name, task["prompt"], seed, source.sha256 if source else None
            )
            if (hit := backends.cache.get(keys[k])) is not None:
                made[k] = hit
    missing = [k for k in seeds if k not in made]
    if missing:
        with span("generator.generate", backend=backends.generator.name, images=len(missing), round=task["round"]):
            annotate_genai("generate_content", model=backends.generator.name)
            fresh = await backends.generator.generate(
                [task["prompt"]] * len(missing),
                [seeds[k] for k in missing],
                [source] * len(missing) if source else None,
            )
        for k, image in zip(missing, fresh, strict=True):
            made[k] = image
            if backends.cache is not None:
                backends.cache.put(keys[k], image)
    return made, set(missing)


def _best_record(state: GCRState, key: str, rescore: bool) -> BestRecord:
    candidate = state["candidates"][key]
    entry = state.get("critiques", {}).get(key)
    return BestRecord(
        reward_note=_reward_note(entry, candidate["round"], rescore),
        key=key,
        round=candidate["round"],
        candidate=candidate["candidate"],
        prompt=candidate["prompt"],
        image=candidate["image"],
        reward=entry["reward"] if entry else None,
        critique=entry["critique"] if entry else None,
    )


def _reward_note(entry: CritiqueEntry | None, round_: int, rescore: bool) -> str:
    """Why the kept image has no reward, in words: a missing reward is a choice or an abstention, never a failure."""
    if entry is not None and entry["reward"] is not None:
        return ""
    if entry is None and round_ > 0 and not rescore:
        return (
            "not re-scored: this preset critiques the first image only and keeps the refined one unscored, as the "
            "paper does; use the `deep` preset or rescore=True to score refined images"
        )
    if entry is not None and entry["abstention"] is not None:
        reason = Abstention.model_validate(entry["abstention"]).reason
        return f"the critic abstained: {reason}"
    if entry is not None:
        return "the critique scored no aspect the reward policy counts"
    return "not critiqued"


def _human_choice(decision: object, proposed: str) -> str:
    """Resume values: a string (the prompt to use), {"prompt": ...}, or True / {"approve": True} to accept."""
    if isinstance(decision, str) and decision.strip():
        return decision.strip()
    if isinstance(decision, dict) and str(decision.get("prompt", "")).strip():
        return str(decision["prompt"]).strip()
    return proposed


def build_gcr_graph(
    config: GCRConfig | None = None,
    *,
    backends: GCRContext | None = None,
    checkpointer: Checkpointer = None,
    name: str | None = None,
    debug: bool = False,
) -> CompiledGCRGraph:
    """The compiled GCR graph for `config` (default: the paper preset). Without `backends`, every run must pass
    `context=GCRContext(...)`."""
    return GCRGraph(config, backends=backends).compile(checkpointer=checkpointer, name=name, debug=debug)
