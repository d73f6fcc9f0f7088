"""Batch runs of the GCR graph over a suite: one thread per prompt under a SQLite checkpointer, bounded concurrency,
a progress bar, resume after a crash or Ctrl-C without redoing finished prompts, and a run directory:

    run.json            format version, config and backends (a directory from another version is refused)
    checkpoints.sqlite  LangGraph checkpoints, one thread per prompt
    images/             content-addressed PNGs (+ scene-graph sidecars in the sketch world)
    cache/              generation cache: (generator, prompt, seed, source) -> image
    trace.jsonl         one event per node execution
    results.jsonl       one line per finished prompt (appended as each finishes)
    failures.jsonl      prompts whose thread raised (retried on resume)
    summary.json        rewards and, for the sketch world, ground-truth accuracy before and after
    report.html         the visual report (`graphs.report`)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from rationalrewards.agents.generator import ImageGenerator
from rationalrewards.agents.refiner import PromptRefiner
from rationalrewards.graphs.checkpoints import sqlite_checkpointer
from rationalrewards.graphs.gcr import GCRContext, GCRGraph
from rationalrewards.graphs.gcr_config import GCRConfig
from rationalrewards.graphs.store import GenerationCache
from rationalrewards.graphs.trace import Tracer
from rationalrewards.rewardmodel.backends.base import RewardModel
from rationalrewards.rewardmodel.schemas import Abstention, CritiqueRequest, ImageRef, Task
from rationalrewards.rewardmodel.scoring import reward_or_none

log = structlog.get_logger(__name__)
RUN_FORMAT_VERSION = 1


class RunDirectoryError(ValueError):
    """The run directory belongs to another format version or another configuration."""


def sample_id(row: dict[str, Any], index: int) -> str:
    if row.get("id"):
        return str(row["id"])
    digest = hashlib.sha256(json.dumps([row.get("prompt"), row.get("source_prompt"), row.get("seed")]).encode()).hexdigest()[:8]
    return f"s{index:05d}-{digest}"


def _append(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        f.flush()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # the last line of a crashed run may be cut short: that prompt simply runs again
    return rows


def _prepare(run_dir: Path, manifest: dict[str, Any]) -> None:
    path = run_dir / "run.json"
    if path.exists():
        existing = json.loads(path.read_text())
        if existing.get("version") != RUN_FORMAT_VERSION:
            raise RunDirectoryError(
                f"{run_dir} was written by run format v{existing.get('version')}; this version writes v{RUN_FORMAT_VERSION}. "
                "Use a new --out directory."
            )
        if existing.get("config") != manifest["config"]:
            raise RunDirectoryError(f"{run_dir} holds a run with another configuration; use a new --out directory to change knobs")
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=1))


class GCRRunner:
    def __init__(
        self,
        run_dir: str | Path,
        *,
        generator: ImageGenerator,
        critic: RewardModel,
        refiner: PromptRefiner,
        config: GCRConfig,
        concurrency: int = 8,
        progress: bool = True,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.run_dir = Path(run_dir)
        self.generator, self.critic, self.refiner = generator, critic, refiner
        self.config = config.for_generator(generator)
        self.concurrency = concurrency
        self.progress = progress

    @property
    def results_path(self) -> Path:
        return self.run_dir / "results.jsonl"

    async def run(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        if not rows:
            raise ValueError("the suite is empty: nothing to run")
        manifest = {"version": RUN_FORMAT_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "config": self.config.as_dict(),
                    "generator": self.generator.name, "critic": type(self.critic).__name__, "refiner": self.refiner.name, "n": len(rows)}
        _prepare(self.run_dir, manifest)
        ids = [sample_id(row, i) for i, row in enumerate(rows)]
        if len(set(ids)) != len(ids):
            raise ValueError("two suite rows share an id; ids must be unique")
        done = {r["sample_id"] for r in read_jsonl(self.results_path)}
        pending = [(sid, row) for sid, row in zip(ids, rows, strict=True) if sid not in done]
        tracer = Tracer(self.run_dir / "trace.jsonl", run_id=self.run_dir.name)
        context = GCRContext(generator=self.generator, critic=self.critic, refiner=self.refiner, tracer=tracer,
                             cache=GenerationCache(self.run_dir / "cache"))
        semaphore = asyncio.Semaphore(self.concurrency)
        failures: list[dict[str, Any]] = []
        waiting: list[str] = []
        started = time.perf_counter()
        async with sqlite_checkpointer(self.run_dir / "checkpoints.sqlite") as saver:
            graph = GCRGraph(self.config).compile(checkpointer=saver)
            columns = (TextColumn("[bold]GCR"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, disable=not self.progress, transient=False) as bar:
                task = bar.add_task("prompts", total=len(rows), completed=len(rows) - len(pending))

                async def one(sid: str, row: dict[str, Any]) -> None:
                    async with semaphore:
                        try:
                            output = await self._thread(graph, context, sid, row)
                        except Exception as e:  # noqa: BLE001 - the runner's boundary: one failing prompt must not sink the run
                            log.error("gcr.thread_failed", sample_id=sid, error=f"{type(e).__name__}: {e}")
                            failure = {"sample_id": sid, "prompt": row.get("prompt"), "error": f"{type(e).__name__}: {e}"}
                            failures.append(failure)
                            _append(self.run_dir / "failures.jsonl", failure)
                            bar.advance(task)
                            return
                        if output is None:
                            waiting.append(sid)
                        else:
                            _append(self.results_path, await self._result(sid, row, output))
                        bar.advance(task)

                await asyncio.gather(*(one(sid, row) for sid, row in pending))
        from rationalrewards.rewardmodel.backends.base import aclose_backends

        await aclose_backends(self.critic, getattr(self.refiner, "llm", None))
        summary = await self.summarize(rows, failures=failures, waiting=waiting, seconds=time.perf_counter() - started)
        from rationalrewards.graphs.report import write_report

        write_report(self.run_dir)
        return summary

    async def _thread(self, graph: Any, context: GCRContext, sid: str, row: dict[str, Any]) -> dict[str, Any] | None:
        config = {"configurable": {"thread_id": sid}, "recursion_limit": 12 + 8 * self.config.max_rounds}
        snapshot = await graph.aget_state(config)
        if snapshot.next:  # interrupted mid-run (crash, Ctrl-C) or waiting for a human: continue from the checkpoint
            if any(t.interrupts for t in snapshot.tasks):
                return None
            await graph.ainvoke(None, config, context=context)
        elif not snapshot.values.get("stop_reason"):
            # Never started, or killed right after its input was checkpointed (no task pending yet): start it. The
            # input channels are rewritten with the same values, so this is the run an uninterrupted thread makes.
            inputs = {"prompt": row["prompt"], "seed": int(row.get("seed", 0)), "sample_id": sid}
            if row.get("tag"):
                inputs["tag"] = row["tag"]
            source = await self._source_image(row)
            if source is not None:
                inputs["source_image"] = source.model_dump(mode="json")
            await graph.ainvoke(inputs, config, context=context)
        snapshot = await graph.aget_state(config)
        if snapshot.next:
            return None  # waiting for a human: resume the thread with Command(resume=...) through the LangGraph API
        return snapshot.values

    async def _source_image(self, row: dict[str, Any]) -> ImageRef | None:
        if row.get("source_image"):
            from rationalrewards.rewardmodel.images import image_ref_from_path

            return image_ref_from_path(row["source_image"])
        if row.get("source_prompt"):
            [made] = await self.generator.generate([row["source_prompt"]], [int(row.get("source_seed", 0))])
            return made.image
        return None

    async def _result(self, sid: str, row: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        candidates, critiques = values.get("candidates", {}), values.get("critiques", {})
        initial = candidates.get("r0c0")
        best = values.get("best") or {}
        initial_reward = critiques.get("r0c0", {}).get("reward")
        final_reward = best.get("reward")
        eval_calls = 0
        if best and final_reward is None and best.get("key") != "r0c0":
            # The paper's loop does not score its refined image; the run report does, outside the loop, to measure it.
            source = ImageRef.model_validate(values["source_image"]) if values.get("source_image") else None
            [answer] = await self.critic.critique([CritiqueRequest(task=Task(values.get("task", "t2i")), prompt=values["prompt"],
                                                                   image=ImageRef.model_validate(best["image"]), source_image=source)])
            eval_calls = 1
            final_reward = reward_or_none(answer, self.config.policy) if not isinstance(answer, Abstention) else None
        elif best.get("key") == "r0c0":
            final_reward = initial_reward
        result = {
            "sample_id": sid, "prompt": values["prompt"], "tag": row.get("tag"), "task": values.get("task"),
            "stop_reason": values.get("stop_reason"), "rounds": values.get("rounds", []), "candidates": candidates,
            "critiques": critiques, "best": best, "initial": initial, "reward_initial": initial_reward,
            "reward_final": final_reward, "generations": values.get("generations", 0),
            "critique_calls": values.get("critique_calls", 0), "eval_critique_calls": eval_calls,
            "abstentions": sum(1 for c in critiques.values() if "abstention" in c),
        }
        result.update(_ground_truth(row, values, initial, best))
        return result

    async def summarize(self, rows: Sequence[dict[str, Any]], *, failures: list[dict[str, Any]] | None = None,
                        waiting: list[str] | None = None, seconds: float = 0.0) -> dict[str, Any]:
        results = read_jsonl(self.results_path)
        summary = summarize_results(results)
        summary.update({"n": len(rows), "finished": len(results), "failed": len(failures or []),
                        "failures": failures or [], "waiting_for_human": waiting or [], "seconds": round(seconds, 2),
                        "preset": self.config.as_dict(), "run_dir": str(self.run_dir)})
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
        return summary


def _ground_truth(row: dict[str, Any], values: dict[str, Any], initial: dict[str, Any] | None, best: dict[str, Any]) -> dict[str, Any]:
    """Sketch-world ground truth for the first and the kept image (empty for generators without scene graphs)."""
    from rationalrewards.agents.sketch.scene import SceneSpec, load_scene, score_against_spec
    from rationalrewards.agents.sketch.spec import SceneSpecError, parse_scene_spec
    from rationalrewards.rewardmodel.errors import InvalidImageError

    if not initial or not best:
        return {}
    try:
        first, kept = (load_scene(ImageRef.model_validate(x["image"])) for x in (initial, best))
    except InvalidImageError:
        return {}
    if values.get("source_image"):
        from rationalrewards.agents.sketch.edits import score_edit

        source = load_scene(ImageRef.model_validate(values["source_image"]))
        a, b = score_edit(source, first, values["prompt"]), score_edit(source, kept, values["prompt"])
        return {"gt_tag": "edit", "correct_initial": a.success, "correct_final": b.success, "errors_final": list(b.errors)}
    try:
        spec = SceneSpec.from_geneval(row) if row.get("include") else parse_scene_spec(values["prompt"])
    except (SceneSpecError, KeyError, ValueError):
        return {}
    a, b = score_against_spec(first, spec), score_against_spec(kept, spec)
    return {"gt_tag": spec.tag, "correct_initial": a.correct, "correct_final": b.correct, "errors_final": list(b.errors)}


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def summarize_results(results: list[dict[str, Any]]) -> dict[str, Any]:
    initial = [r["reward_initial"] for r in results if r.get("reward_initial") is not None]
    final = [r["reward_final"] for r in results if r.get("reward_final") is not None]
    summary: dict[str, Any] = {
        "reward_initial": _mean(initial),
        "reward_final": _mean(final),
        "abstentions": sum(r.get("abstentions", 0) for r in results),
        "generations": sum(r.get("generations", 0) for r in results),
        "critique_calls": sum(r.get("critique_calls", 0) for r in results),
        "stop_reasons": {k: sum(1 for r in results if r.get("stop_reason") == k) for k in sorted({r.get("stop_reason") for r in results if r.get("stop_reason")})},
    }
    graded = [r for r in results if "correct_initial" in r]
    if graded:
        from rationalrewards.agents.sketch.scene import SpecResult, accuracy_by_tag

        before = accuracy_by_tag([SpecResult(correct=r["correct_initial"], tag=r["gt_tag"]) for r in graded])
        after = accuracy_by_tag([SpecResult(correct=r["correct_final"], tag=r["gt_tag"]) for r in graded])
        summary["accuracy_initial"] = round(before.pop("overall"), 4)
        summary["accuracy_final"] = round(after.pop("overall"), 4)
        summary["per_tag"] = {tag: {"initial": round(before[tag], 4), "final": round(after[tag], 4)} for tag in before}
        summary["accuracy_is"] = "GenEval-style mean over tags; initial = the first image (round 0, candidate 0)"
    return summary
