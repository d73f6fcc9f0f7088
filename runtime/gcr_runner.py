"""Batch runs of the GCR graph over a suite, on the shared batch runner (`runtime.batch`): one thread per prompt under a
SQLite checkpointer, bounded concurrency, a progress bar, resume after a crash or Ctrl-C without redoing finished
prompts, and a run directory (`runtime.rundir`: one writer at a time, resume only with the same inputs):

    run.json            format version, every setting that determines the output, the suite's content hash
    checkpoints.sqlite  LangGraph checkpoints, one thread per prompt in flight (a finished prompt's are deleted once
                        its results.jsonl line is written, unless keep_history)
    images/             content-addressed PNGs (+ scene-graph sidecars in the sketch world)
    cache/              generation cache: (generator, prompt, seed, source) -> image
    trace.jsonl         one event per node execution
    results.jsonl       one line per finished prompt (appended as each finishes; the resume key)
    failures.jsonl      prompts whose thread raised (retried on resume)
    summary.json        rewards and, with a grader, ground-truth accuracy before and after
    report.html         the visual report (`runtime.report`)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Required, TypedDict

from rationalrewards.agents.generator import ImageGenerator
from rationalrewards.agents.grading import Grade, Grader, TagAccuracy
from rationalrewards.agents.refiner import PromptRefiner
from rationalrewards.agents.suite import SuiteRow, suite_rows
from rationalrewards.graphs.gcr import GCRContext, GCRGraph
from rationalrewards.graphs.gcr_config import GCRConfig
from rationalrewards.graphs.state import (
    BestRecord,
    CandidateRecord,
    CritiqueEntry,
    GCRInput,
    RoundRecord,
    image_ref_dict,
)
from rationalrewards.graphs.store import GenerationCache
from rationalrewards.graphs.trace import Tracer
from rationalrewards.rewardmodel.backends.base import RewardModel, aclose_backends, backend_name, prompt_profile_of
from rationalrewards.rewardmodel.schemas import CritiqueRequest, ImageRef, Task
from rationalrewards.rewardmodel.scoring import reward_or_none
from rationalrewards.runtime.batch import RESULTS, BatchOutcome, JobRunner, Keyed, content_hash, run_thread
from rationalrewards.runtime.rundir import RunDirectory, iter_jsonl


class GradeRecord(TypedDict):
    correct: bool
    tag: str
    errors: list[str]


class GCRResult(TypedDict, total=False):
    """One line of `results.jsonl`: a finished prompt."""

    sample_id: str
    prompt: str
    tag: str | None
    task: str
    stop_reason: str
    rounds: list[RoundRecord]
    candidates: dict[str, CandidateRecord]
    critiques: dict[str, CritiqueEntry]
    best: BestRecord | None
    reward_initial: float | None  # the first image's (round 0, candidate 0)
    reward_final: float | None  # the kept image's (critiqued after the loop when the loop did not score it)
    generations: int
    critique_calls: int
    eval_critique_calls: int
    abstentions: int
    grade_initial: GradeRecord  # present only when a grader judged both images
    grade_final: GradeRecord


class GCRRunner(JobRunner):
    job = "gcr"

    def __init__(
        self,
        run_dir: str | Path,
        *,
        generator: ImageGenerator,
        critic: RewardModel,
        refiner: PromptRefiner,
        config: GCRConfig,
        grader: Grader | None = None,
        concurrency: int = 8,
        progress: bool = True,
        settings: dict[str, Any] | None = None,
        force_new: bool = False,
        keep_history: bool = False,
        durability: str | None = None,
        checkpointer: str | None = None,
    ) -> None:
        """`settings`: what else determines the output (e.g. the CLI's backend specs), recorded in `run.json`."""
        self.generator, self.critic, self.refiner, self.grader = generator, critic, refiner, grader
        self.config = config.for_generator(generator)
        backends = {
            "generator": backend_name(generator),
            "critic": backend_name(critic),
            "refiner": backend_name(refiner),
            "grader": backend_name(grader) if grader else None,
        }
        super().__init__(
            run_dir,
            concurrency=concurrency,
            progress=progress,
            force_new=force_new,
            keep_history=keep_history,
            durability=durability,
            checkpointer=checkpointer,
            settings={"config": self.config.as_dict(), **backends} | (settings or {}),
        )

    async def run(self, rows: Sequence[SuiteRow | dict[str, object]]) -> GCRSummary:
        rows = suite_rows(rows)
        if not rows:
            raise ValueError("the suite is empty: nothing to run")
        with self.open() as run_dir:
            run_dir.bind_inputs(content_hash(row.model_dump() for row in rows), len(rows))
            tracer = Tracer(run_dir.file("trace.jsonl"), run_id=self.path.name)
            context = GCRContext(
                generator=self.generator,
                critic=self.critic,
                refiner=self.refiner,
                tracer=tracer,
                cache=GenerationCache(run_dir.file("cache")),
            )
            batch = self.batch(run_dir, key="sample_id")
            graph = GCRGraph(self.config)

            async def work(compiled: object, sample_id: str, row: SuiteRow) -> dict[str, object] | None:
                values = await run_thread(
                    compiled,
                    batch.thread_id(sample_id),
                    lambda: self._input(sample_id, row),
                    context=context,
                    recursion_limit=12 + 8 * self.config.max_rounds,
                    durability=batch.durability,
                )
                if values is None:
                    return None  # waiting for a human: resume the thread with Command(resume=...) through the LangGraph API
                if not values.get("stop_reason"):
                    raise RuntimeError(f"thread {sample_id} has a checkpoint but nothing left to run and no result")
                return dict(await self._result(row, values))

            try:
                outcome = await batch.run(
                    Keyed([row.sample_id(i) for i, row in enumerate(rows)], rows),
                    build_graph=lambda saver: graph.compile(checkpointer=saver),
                    work=work,
                    pauses=self.config.human_in_the_loop,
                )
            finally:
                tracer.close()
                await aclose_backends(self.critic, self.generator, getattr(self.refiner, "llm", None))
            summary = self.summarize(run_dir, len(rows), outcome)
            from rationalrewards.runtime.report import write_report

            write_report(run_dir.path)
        return summary

    async def _input(self, sample_id: str, row: SuiteRow) -> dict[str, object]:
        inputs = GCRInput(prompt=row.prompt, seed=row.seed, sample_id=sample_id)
        if row.tag:
            inputs["tag"] = row.tag
        if row.source_image is not None:
            from rationalrewards.rewardmodel.images import image_ref_from_path

            inputs["source_image"] = image_ref_dict(image_ref_from_path(row.source_image))
        elif row.source_prompt is not None:
            [made] = await self.generator.generate([row.source_prompt], [row.source_seed])
            inputs["source_image"] = image_ref_dict(made.image)
        return dict(inputs)

    async def _final_reward(
        self, values: dict[str, Any], best: BestRecord | None, initial_reward: float | None
    ) -> tuple[float | None, int]:
        """The kept image's reward, and the critic calls spent outside the loop to get it."""
        if best is None:
            return None, 0
        if best["key"] == "r0c0" or best["reward"] is not None:
            return (initial_reward if best["key"] == "r0c0" else best["reward"]), 0
        # The paper's loop does not score its refined image; the run scores it outside the loop, to measure it.
        source = ImageRef.model_validate(values["source_image"]) if values.get("source_image") else None
        [answer] = await self.critic.critique(
            [
                CritiqueRequest(
                    task=Task(values.get("task", "t2i")),
                    prompt=values["prompt"],
                    image=ImageRef.model_validate(best["image"]),
                    source_image=source,
                )
            ]
        )
        return reward_or_none(answer, self.config.policy), 1

    async def _result(self, row: SuiteRow, values: dict[str, Any]) -> GCRResult:
        candidates: dict[str, CandidateRecord] = values.get("candidates", {})
        critiques: dict[str, CritiqueEntry] = values.get("critiques", {})
        best: BestRecord | None = values.get("best")
        initial_entry = critiques.get("r0c0")
        reward_initial = initial_entry["reward"] if initial_entry else None
        reward_final, eval_calls = await self._final_reward(values, best, reward_initial)
        result = GCRResult(
            prompt=values["prompt"],
            tag=row.tag,
            task=values.get("task", "t2i"),
            stop_reason=values.get("stop_reason", ""),
            rounds=values.get("rounds", []),
            candidates=candidates,
            critiques=critiques,
            best=best,
            reward_initial=reward_initial,
            reward_final=reward_final,
            generations=values.get("generations", 0),
            critique_calls=values.get("critique_calls", 0),
            eval_critique_calls=eval_calls,
            abstentions=sum(entry["abstention"] is not None for entry in critiques.values()),
        )
        initial = candidates.get("r0c0")
        if self.grader is not None and initial is not None and best is not None:
            source = ImageRef.model_validate(values["source_image"]) if values.get("source_image") else None
            first = self.grader.grade(row, values["prompt"], ImageRef.model_validate(initial["image"]), source)
            kept = self.grader.grade(row, values["prompt"], ImageRef.model_validate(best["image"]), source)
            if first is not None and kept is not None:
                result["grade_initial"], result["grade_final"] = _grade_record(first), _grade_record(kept)
        return result

    def summarize(self, run_dir: RunDirectory, n: int, outcome: BatchOutcome) -> GCRSummary:
        summary = summarize_results(iter_jsonl(run_dir.file(RESULTS)))
        summary["n"], summary["failed"], summary["failures"] = n, len(outcome.failures), list(outcome.failures)
        summary["waiting_for_human"], summary["seconds"] = outcome.waiting, outcome.seconds
        summary["preset"], summary["critic_prompts"] = self.config.as_dict(), prompt_profile_of(self.critic)
        summary["run_dir"] = str(run_dir.path)
        run_dir.write_json("summary.json", summary)
        return summary


def _grade_record(grade: Grade) -> GradeRecord:
    return GradeRecord(correct=grade.correct, tag=grade.tag, errors=list(grade.errors))


class _Mean:
    """A running mean that ignores missing values."""

    def __init__(self) -> None:
        self.total, self.count = 0.0, 0

    def add(self, value: float | None) -> None:
        if value is not None:
            self.total += value
            self.count += 1

    @property
    def value(self) -> float | None:
        return round(self.total / self.count, 4) if self.count else None


class TagFigures(TypedDict):
    initial: float
    final: float


class GCRSummary(TypedDict, total=False):
    """What a GCR run reports (`summary.json`, `refine --json`): figures over its results, and the run's facts."""

    finished: Required[int]
    reward_initial: float | None  # mean reward of the first image (round 0, candidate 0)
    reward_final: float | None  # ... of the kept image
    abstentions: int
    generations: int
    critique_calls: int
    stop_reasons: dict[str, int]
    accuracy_initial: float  # with a grader: GenEval-style mean over tags
    accuracy_final: float
    per_tag: dict[str, TagFigures]
    accuracy_is: str
    n: int
    failed: int
    failures: list[dict[str, object]]
    waiting_for_human: list[str]
    seconds: float
    preset: dict[str, object]
    critic_prompts: str | None
    run_dir: str
    report: str


def summarize_results(results: Iterable[dict[str, Any]]) -> GCRSummary:
    """Run figures in one pass over the results (constant memory): rewards, counts, stop reasons, and ground-truth
    accuracy (GenEval-style mean over tags) where a grader judged the images. Each prompt counts once."""
    seen: set[str] = set()
    means = {"reward_initial": _Mean(), "reward_final": _Mean()}
    counts = {"abstentions": 0, "generations": 0, "critique_calls": 0}
    stops: dict[str, int] = {}
    before, after = TagAccuracy(), TagAccuracy()
    for r in results:
        if r.get("sample_id") in seen:
            continue
        seen.add(r.get("sample_id", ""))
        for key, mean in means.items():
            mean.add(r.get(key))
        for key in counts:
            counts[key] += r.get(key, 0)
        if r.get("stop_reason"):
            stops[r["stop_reason"]] = stops.get(r["stop_reason"], 0) + 1
        if "grade_initial" in r:
            before.add(r["grade_initial"]["tag"], r["grade_initial"]["correct"])
            after.add(r["grade_final"]["tag"], r["grade_final"]["correct"])
    summary = GCRSummary(
        finished=len(seen),
        reward_initial=means["reward_initial"].value,
        reward_final=means["reward_final"].value,
        abstentions=counts["abstentions"],
        generations=counts["generations"],
        critique_calls=counts["critique_calls"],
        stop_reasons=dict(sorted(stops.items())),
    )
    if before:
        initial, final = before.result(), after.result()
        summary["accuracy_initial"] = round(initial.pop("overall"), 4)
        summary["accuracy_final"] = round(final.pop("overall"), 4)
        summary["per_tag"] = {
            tag: TagFigures(initial=round(initial[tag], 4), final=round(final[tag], 4)) for tag in initial
        }
        summary["accuracy_is"] = "GenEval-style mean over tags; initial = the first image (round 0, candidate 0)"
    return summary
