"""The paper's PARROT ablation (Table 1) in miniature: students distilled from PARROT data vs from direct distillation of
the same teacher, evaluated on held-out preference pairs, then used as the critic of Generate-Critique-Refine.

    rationalrewards experiment parrot-ablation --out DIR [--budget-minutes M] [--seed S] [--json]

Protocol (fixed before any result was seen; `AblationSettings` holds every knob):
1. **World.** Sketch prompts in GenEval phrasing, split by prompt: training prompts, and held-out prompts never seen in
   training (half GenEval phrasing, half paraphrases). One preference pair per prompt (two seeds of the sketch
   generator, the label from the scene graphs; `label_noise` of training labels flipped). Held-out pairs are judged
   against their true labels.
2. **Two training sets from the same pairs and the same noisy teacher** (the sketch oracle with hallucination and
   perception noise at `teacher_noise`):
   - `parrot`: anchored rationales -> consistency filter (`both`: re-prediction with images, then score agreement)
     -> pointwise projection of kept pairs (the PARROT runner itself);
   - `direct`: the teacher judging each pair without the label, unfiltered, plus pointwise critiques of each image
     without a reference.
   The direct set is cut to the PARROT set's size, kind by kind (same pairwise and pointwise row counts; rows drawn
   at random with the run's seed), so the arms differ only in how their rows were made.
3. **Students**: SmolLM2-135M-Instruct (installed offline, exported to safetensors), fully fine-tuned with
   `rationalrewards distill` for the same time budget from the same initialisation, reading each image as a perception
   transcript (`sketch.transcript`, noise `transcript_noise`) in place of image tokens. Held-out pairwise
   accuracy is logged during training (the curve).
4. **Evaluation** on every held-out pair: each student, the teacher judging without the label, and chance. Pairwise
   accuracy by the summed-score rule (ties and abstentions apart) with a bootstrap 95% interval, parse rate, ties,
   per-aspect agreement with the exact oracle, and the pointwise text-faithfulness score against the exact oracle's.
5. **Closing the loop**: held-out prompts through GCR (`paper`, `deep`) with each student as critic, beside the
   privileged sketch oracle and single-shot generation; ground-truth accuracy of the kept images.

What the transcript stand-in shows and does not: whether better rationales make a better student when perception is
given (as text, with errors); not whether a VLM learns to see. The pixel path is `rationalrewards distill --model
QWEN_VL_DIR` on a GPU with the same PARROT exports.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog

from rationalrewards.experiments._common import bind_settings, bootstrap_interval, cached_json
from rationalrewards.experiments.settings import AblationSettings
from rationalrewards.rewardmodel.prompts import PromptProfile

log = structlog.get_logger(__name__)

ARMS = ("parrot", "direct")
RUNS_PAGE = "parrot_ablation_runs.md"  # the docs page of earlier runs, which `copy_to_docs` links and keeps
PROFILE: PromptProfile = (
    "compact"  # the students' prompts: the house request without its rubric (CPU training time is per token)
)


@dataclass
class World:
    train_pairs: Path
    held_pairs: Path  # true labels
    held_suite: list[dict[str, object]] = field(default_factory=list)  # the held-out prompts with GenEval ground truth


# ------------------------------------------------------------------ 1. the world --------------------------------------


def build_world(out: Path, settings: AblationSettings) -> World:
    """Training and held-out pairs, split by prompt (no prompt on both sides), written as JSONL."""
    from rationalrewards.plumbing.files import atomic_write_jsonl
    from rationalrewards.sketch.generator import SketchGenerator
    from rationalrewards.sketch.pairs import make_preference_pairs
    from rationalrewards.sketch.spec import SceneSpecError, parse_scene_spec
    from rationalrewards.sketch.suites import make_suite, paraphrase_suite

    world = out / "world"
    seed = settings.world_seed
    held_rows = make_suite(settings.held_out_prompts // 2 + 8, seed=seed + 1) + paraphrase_suite(
        settings.held_out_prompts - settings.held_out_prompts // 2 + 8, seed=seed + 2
    )
    held: dict[str, dict[str, Any]] = {}
    for row in held_rows:
        try:
            parse_scene_spec(row["prompt"])  # ground truth must be exact
        except SceneSpecError:
            continue
        held.setdefault(row["prompt"], row)
    held_suite = list(held.values())[: settings.held_out_prompts]
    held_prompts = {row["prompt"] for row in held_suite}
    train: list[str] = []
    for row in make_suite(settings.train_prompts * 2, seed=seed):
        if row["prompt"] not in held_prompts and row["prompt"] not in train:
            train.append(row["prompt"])
        if len(train) == settings.train_prompts:
            break
    generator = SketchGenerator(world / "images")
    train_pairs = make_preference_pairs(train, generator, label_noise=settings.label_noise, seed=seed)
    held_pairs = make_preference_pairs(
        [row["prompt"] for row in held_suite], generator, label_noise=0.0, seed=seed + 100
    )
    for row in held_pairs:
        row["pair_id"] = "held-" + row["pair_id"]
    keys = ("pair_id", "prompt", "image_a", "image_b", "label")
    atomic_write_jsonl(world / "train_pairs.jsonl", ({k: r[k] for k in keys} for r in train_pairs))
    atomic_write_jsonl(world / "held_pairs.jsonl", held_pairs)  # label == true_label here
    atomic_write_jsonl(world / "held_suite.jsonl", held_suite)
    return World(world / "train_pairs.jsonl", world / "held_pairs.jsonl", held_suite)


def _teacher(out: Path, settings: AblationSettings, seed: int) -> Any:
    from rationalrewards.sketch.oracle import SketchOracle

    noise = settings.teacher_noise
    return SketchOracle(perception_noise=noise, hallucination=noise, seed=seed, image_dirs=[out / "world" / "images"])


# ------------------------------------------------------------------ 2. training sets ----------------------------------


def parrot_set(out: Path, world: World, settings: AblationSettings) -> dict[str, object]:
    """The PARROT runner over the training pairs: anchored -> filter `both` -> projection; its export is the set."""
    from rationalrewards.agents.preferences import load_preferences
    from rationalrewards.graphs.parrot import ParrotConfig
    from rationalrewards.runtime.parrot_runner import ParrotRunner

    runner = ParrotRunner(
        out / "data" / "parrot",
        teacher=_teacher(out, settings, settings.world_seed),
        config=ParrotConfig(filter="both", project=True),
        concurrency=32,
        progress=False,
        student_prompts=PROFILE,
        settings={"experiment": "parrot-ablation", "teacher_noise": settings.teacher_noise},
    )
    return asyncio.run(runner.run(load_preferences(world.train_pairs)))


def direct_set(out: Path, world: World, settings: AblationSettings) -> Path:
    """The teacher's unanchored pairwise judgement of every pair (no filter) and its pointwise critiques of every
    image (no reference), as SFT rows in the same form and prompt profile as PARROT's export."""
    from rationalrewards.agents.preferences import load_preferences
    from rationalrewards.plumbing.files import atomic_write_jsonl
    from rationalrewards.rewardmodel.schemas import CompareRequest, Critique, CritiqueRequest
    from rationalrewards.runtime.parrot_runner import sft_row

    teacher = _teacher(out, settings, settings.world_seed)
    pairwise, pointwise = [], []
    for pair in load_preferences(world.train_pairs).pairs:
        common = {"pair_id": pair.pair_id, "task": pair.task.value, "prompt": pair.prompt}
        text = teacher.pairwise_text(CompareRequest.like(pair))  # no label: the teacher's own judgement
        pairwise.append(sft_row(CompareRequest.like(pair), text, profile=PROFILE, **common, kind="pairwise"))
        for side, image in (("A", pair.image_a), ("B", pair.image_b)):
            request = CritiqueRequest.like(pair, image=image, with_refinement=True)
            critique = teacher.critique_one(request)
            if isinstance(critique, Critique):
                pointwise.append(
                    sft_row(request, critique.raw_text, profile=PROFILE, **common, kind="pointwise", side=side)
                )
    target = out / "data" / "direct-export"
    atomic_write_jsonl(target / "pairwise.jsonl", pairwise)
    atomic_write_jsonl(target / "pointwise.jsonl", pointwise)
    return target


def training_set(source: Path, target: Path, *, like: Path | None = None, seed: int = 0) -> dict[str, int]:
    """`source`'s rows with short targets (`short_answer`), written to `target`; with `like`, cut to `like`'s row
    counts file by file (pairwise, pointwise), rows drawn at random with `seed`."""
    from rationalrewards.plumbing.files import atomic_write_jsonl

    counts = {}
    for name in ("pairwise.jsonl", "pointwise.jsonl"):
        rows = [json.loads(line) for line in (source / name).read_text().splitlines()]
        if like is not None:
            wanted = len((like / name).read_text().splitlines())
            if wanted > len(rows):
                raise ValueError(f"{source / name} has {len(rows)} rows, fewer than the {wanted} of {like / name}")
            rows = [rows[i] for i in sorted(random.Random(f"{seed}:{name}").sample(range(len(rows)), wanted))]
        for row in rows:
            answer = row["messages"][-1]
            answer["content"] = short_answer(answer["content"], row["kind"], row["task"])
        atomic_write_jsonl(target / name, rows)
        counts[name.removesuffix(".jsonl")] = len(rows)
    return counts


def short_answer(text: str, kind: str, task: str) -> str:
    """A teacher's answer cut to what a judgement needs (the issue's "targets as short as keep them faithful to the
    format"): per dimension the justification and the score line(s), and a critique's refined request; analysis,
    winner lines and summary dropped. Same for both arms; the parser reads it as it reads the full answer."""
    from rationalrewards.rewardmodel.format import format_score
    from rationalrewards.rewardmodel.parsing import parse_critique, parse_pairwise
    from rationalrewards.rewardmodel.schemas import Task

    lines: list[str] = []
    if kind == "pairwise":
        judgement = parse_pairwise(text, Task(task))
        for number, aspect in enumerate(judgement.task.aspects, start=1):
            item = judgement.aspects[aspect]
            lines += [
                f"{number}. {aspect.header}:",
                f"## Justification: {item.justification}",
                f"## Score A: {format_score(item.score_a)}",
                f"## Score B: {format_score(item.score_b)}",
            ]
        return "\n".join(lines)
    critique = parse_critique(text, Task(task))
    for number, aspect in enumerate(critique.task.aspects, start=1):
        assessment = critique.assessments[aspect]
        lines += [
            f"{number}. {aspect.header}:",
            f"## Justification: {assessment.justification}",
            f"## Score: {format_score(assessment.score)}",
        ]
    if critique.refined_request:
        lines += ["# User Request Refinement:", f"## Refined Request: {critique.refined_request}"]
    return "\n".join(lines)


def held_out_rows(out: Path, world: World) -> Path:
    """The held-out pairs as pairwise rows (compact prompts, true labels): what the curve during training scores. The
    answer is a placeholder the evaluation never reads (it generates its own)."""
    from rationalrewards.agents.preferences import load_preferences
    from rationalrewards.plumbing.files import atomic_write_jsonl
    from rationalrewards.rewardmodel.schemas import CompareRequest
    from rationalrewards.runtime.parrot_runner import sft_row

    rows = [
        sft_row(
            CompareRequest.like(p),
            "(not used)",
            profile=PROFILE,
            prompt=p.prompt,
            task=p.task.value,
            kind="pairwise",
            label=p.label,
        )
        for p in load_preferences(world.held_pairs).pairs
    ]
    return atomic_write_jsonl(out / "data" / "held_out.jsonl", rows)


# ------------------------------------------------------------------ 3. students ---------------------------------------


def student_base(out: Path, given: str | None = None) -> Path:
    """The base student: `given`, or SmolLM2-135M-Instruct as a safetensors directory (exported once from the
    installed GGUF)."""
    from rationalrewards.rewardmodel.tiny import export_smollm2

    if given is not None:
        return Path(given)
    target = out / "smollm2"
    if not (target / "model.safetensors").is_file():
        export_smollm2(target)
    return target


def train_student(
    out: Path, base: Path, data: Path, held: Path, settings: AblationSettings, seed: int, steps: int | None
) -> dict[str, Any]:
    """One student. `steps` None: train for the time budget (the first student); otherwise exactly `steps` steps
    (every other student: the same number of updates for every arm and seed, whatever the machine's load)."""
    from rationalrewards.training.distill_config import DistillConfig
    from rationalrewards.training.distill_trainer import train

    done = _trained(out, steps)
    if done is not None:
        return done
    config = DistillConfig(
        model=str(base),
        data=[str(data)],
        eval_data=[str(held)],
        transcript_noise=settings.transcript_noise,
        learning_rate=settings.learning_rate,
        warmup_steps=10,
        num_train_epochs=50,  # the time budget (or max_steps) ends training
        max_steps=steps if steps is not None else -1,
        time_budget=settings.budget_minutes if steps is None else 4 * settings.budget_minutes,
        train_layers=settings.train_layers,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=1,
        max_length=settings.max_length,
        overlong="truncate",
        eval_every=10**9,  # set below from the measured step time
        eval_pairs=settings.curve_pairs,
        eval_max_new_tokens=settings.max_new_tokens,
        seed=seed,
        data_seed=seed,
        report_to=["none"],
        save_steps=10**9,
        logging_steps=5,
        output_dir=str(out / "checkpoints"),
    )
    config.eval_every = _eval_every(settings)
    return train(config, out)


def _trained(out: Path, steps: int | None) -> dict[str, object] | None:
    """The figures of a student an earlier run of the experiment finished (its model saved), so a rerun after a
    crash or a stop does not train it again; None when there is none or it trained for another number of steps."""
    summary, model = out / "summary.json", out / "model"
    if not summary.is_file() or not (model / "config.json").is_file():
        return None
    figures: dict[str, object] = json.loads(summary.read_text())
    if steps is not None and figures.get("steps") != steps:
        return None
    log.info("ablation.student_reused", student=out.name, steps=figures.get("steps"))
    return figures | {"checkpoint": str(model)}


def _eval_every(settings: AblationSettings) -> int:
    """Steps between curve points: the budget's expected steps (at `step_seconds`) over the evaluations wanted plus
    one (the end of training always evaluates)."""
    expected_steps = settings.budget_minutes * 60 / settings.step_seconds
    return max(1, int(expected_steps / (settings.evaluations + 1)))


# ------------------------------------------------------------------ 4. evaluation -------------------------------------


def _compare_with_progress(critic: Any, requests: list[object], chunk: int = 32) -> list[Any]:
    """`critic.compare(requests)` in chunks under a progress bar: scoring 400 pairs with a CPU student takes tens of
    minutes. A chunk is two of the local critic's generation batches, so chunking costs no throughput."""
    from tqdm.auto import tqdm

    results: list[Any] = []
    with tqdm(total=len(requests), desc=f"scoring ({getattr(critic, 'name', 'critic')})", unit="pair") as bar:
        for start in range(0, len(requests), chunk):
            results += asyncio.run(critic.compare(requests[start : start + chunk]))
            bar.update(min(chunk, len(requests) - start))
    return results


def evaluate_critic(
    critic: Any, held_pairs: Path, *, seed: int = 0, pointwise_images: int = 100, record: Path | None = None
) -> dict[str, object]:
    """Pairwise accuracy (summed-score rule) on decisive held-out pairs with its bootstrap interval, parse rate,
    ties, abstentions, per-aspect agreement with the exact oracle, and pointwise text faithfulness vs the oracle.
    `record`: a JSONL file that keeps every pair's judgement (scores, raw text, or the abstention), to read why."""
    from rationalrewards.agents.preferences import load_preferences
    from rationalrewards.plumbing.files import atomic_write_jsonl
    from rationalrewards.rewardmodel.schemas import Abstention, Aspect, CompareRequest, Critique, CritiqueRequest
    from rationalrewards.sketch.oracle import SketchOracle

    pairs = load_preferences(held_pairs).pairs
    exact = SketchOracle(image_dirs=[])
    started = time.perf_counter()
    judgements = _compare_with_progress(critic, [CompareRequest.like(p) for p in pairs])
    truths = asyncio.run(exact.compare([CompareRequest.like(p) for p in pairs]))
    if record is not None:
        atomic_write_jsonl(
            record,
            (
                {"pair_id": p.pair_id, "prompt": p.prompt, "label": p.label, "judgement": j.model_dump(mode="json")}
                for p, j in zip(pairs, judgements, strict=True)
            ),
        )
    outcomes, ties, abstentions, agree, scored = [], 0, 0, 0, 0
    for pair, judged, truth in zip(pairs, judgements, truths, strict=True):
        if isinstance(judged, Abstention):
            abstentions += 1
            if pair.label != "tie":
                outcomes.append(0)  # an abstention on a decisive pair is not a correct preference
            continue
        winner = judged.preferred
        ties += winner == "tie"
        if pair.label != "tie":
            outcomes.append(int(winner == pair.label))
        if isinstance(truth, Abstention):
            continue
        for aspect, mine in judged.aspects.items():
            theirs = truth.aspects.get(aspect)
            if theirs is None or mine.score_a is None or theirs.score_a is None:
                continue
            scored += 2
            agree += (mine.score_a == theirs.score_a) + (mine.score_b == theirs.score_b)
    images = [CritiqueRequest.like(p, image=p.image_a) for p in pairs[:pointwise_images]]
    pointwise = asyncio.run(critic.critique(images))
    exact_pointwise = asyncio.run(exact.critique(images))
    errors: list[float] = []
    parsed_pointwise = 0
    for critique, reference in zip(pointwise, exact_pointwise, strict=True):
        if isinstance(critique, Critique) and isinstance(reference, Critique):
            parsed_pointwise += 1
            a = critique.assessments.get(Aspect.text_faithfulness)
            b = reference.assessments.get(Aspect.text_faithfulness)
            if a is not None and b is not None and a.score is not None and b.score is not None:
                errors.append(abs(a.score - b.score))
    decisive = [p for p in pairs if p.label != "tie"]
    return {
        "pairs": len(pairs),
        "decisive_pairs": len(decisive),
        "accuracy": sum(outcomes) / len(outcomes) if outcomes else None,
        "accuracy_ci95": bootstrap_interval(outcomes, seed=seed),
        "parse_rate": 1 - abstentions / len(pairs) if pairs else None,
        "abstentions": abstentions,
        "predicted_ties": ties,
        "aspect_agreement": agree / scored if scored else None,
        "pointwise_parse_rate": parsed_pointwise / len(images) if images else None,
        "text_faithfulness_mae": sum(errors) / len(errors) if errors else None,
        "text_faithfulness_exact": sum(e == 0 for e in errors) / len(errors) if errors else None,
        "seconds": round(time.perf_counter() - started, 1),
    }


def chance(held_pairs: Path) -> dict[str, object]:
    from rationalrewards.agents.preferences import load_preferences

    decisive = [p for p in load_preferences(held_pairs).pairs if p.label != "tie"]
    return {"decisive_pairs": len(decisive), "accuracy": 0.5, "note": "a fair coin on decisive pairs"}


# ------------------------------------------------------------------ 3+4. one student, trained and scored --------------


@dataclass(frozen=True)
class StudentStage:
    """Train one student (or reuse the one an earlier run saved) and score it on the held-out pairs (or reuse its
    `evaluation.json`): what `run_ablation` does per arm and seed, in this process or in worker processes."""

    out: Path
    base: Path
    world: World
    held: Path
    settings: AblationSettings

    def run(self, arm: str, seed: int, *, steps: int | None) -> dict[str, Any]:
        name = f"{arm}-seed{seed}"
        folder = self.out / "students" / name
        log.info("ablation.train", student=name, minutes=self.settings.budget_minutes, steps=steps)
        figures = train_student(
            folder, self.base, self.out / "data" / f"train-{arm}", self.held, self.settings, seed, steps
        )
        evaluation = cached_json(folder / "evaluation.json", lambda: self.evaluate(figures["checkpoint"], seed))
        return {
            "arm": arm,
            "seed": seed,
            "steps": figures["steps"],
            "train_seconds": figures["seconds"],
            "loss_first": figures["train_loss_first"],
            "loss_last": figures["train_loss_last"],
            "curve": [
                {"step": e["step"], "accuracy": e.get("eval_pairwise_accuracy"), "parse": e.get("eval_parse_rate")}
                for e in figures.get("evaluations") or []
            ],
            "evaluation": evaluation,
            "checkpoint": figures["checkpoint"],
        }

    def evaluate(self, checkpoint: str, seed: int) -> dict[str, Any]:
        student = _student_critic(checkpoint, self.settings)
        pointwise, record = self.settings.pointwise_images, Path(checkpoint).parent / "judgements.jsonl"
        return evaluate_critic(student, self.world.held_pairs, seed=seed, pointwise_images=pointwise, record=record)

    def run_parallel(
        self, students: list[tuple[str, int]], *, steps: int, jobs: int
    ) -> dict[tuple[str, int], dict[str, object]]:
        """`students` in `jobs` worker processes (spawned: torch does not fork safely), each with its share of the
        machine's threads; each student's figures, as `run` returns them. A worker's failure is raised here."""
        import multiprocessing
        import os
        from concurrent.futures import ProcessPoolExecutor

        threads = max(1, (os.cpu_count() or 1) // jobs)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker_setup, initargs=(threads,)) as pool:
            futures = {student: pool.submit(self.run, *student, steps=steps) for student in students}
            return {student: future.result() for student, future in futures.items()}


def _worker_setup(threads: int) -> None:
    """A worker's torch threads, and its prints (the trainers' logs) on stderr: the parent's stdout carries the
    command's result (one JSON object under --json), and a spawned worker does not inherit a redirection of it."""
    import sys

    import torch

    torch.set_num_threads(threads)
    sys.stdout = sys.stderr


def _student_critic(checkpoint: str, settings: AblationSettings) -> object:
    """A trained student as a critic: its compact prompts and perception transcripts, as it was trained."""
    from rationalrewards.agents.factory import reward_model_from_spec

    return reward_model_from_spec(checkpoint, prompts=PROFILE, max_tokens=settings.max_new_tokens, batch_size=16)


# ------------------------------------------------------------------ 5. the loop ---------------------------------------


def gcr_accuracy(out: Path, critic: Any, suite: list[dict[str, object]], preset: str) -> dict[str, object]:
    """Ground-truth accuracy of GCR with `critic` on `suite` (first image: single-shot; kept image: after the loop)."""
    from rationalrewards.agents.refiner import CriticRefiner
    from rationalrewards.graphs.gcr_config import GCRConfig
    from rationalrewards.runtime.gcr_runner import GCRRunner
    from rationalrewards.sketch.generator import SketchGenerator
    from rationalrewards.sketch.grader import SketchGrader

    runner = GCRRunner(
        out,
        generator=SketchGenerator(out / "images"),
        critic=critic,
        refiner=CriticRefiner(),
        config=GCRConfig.preset(preset),
        grader=SketchGrader(),
        concurrency=16,
        progress=False,
    )
    summary = asyncio.run(runner.run(suite))
    return {
        key: summary.get(key)
        for key in ("n", "finished", "failed", "accuracy_initial", "accuracy_final", "critique_calls", "abstentions")
    }


# ------------------------------------------------------------------ the whole experiment -----------------------------


def run_ablation(out: str | Path, settings: AblationSettings | None = None, *, jobs: int = 1) -> dict[str, object]:
    """Run every stage into `out` and write `report.md`, `results.json` and `curves.png`. Returns the results.

    `jobs` > 1 trains and scores the students after the first in that many processes at once, sharing the CPU's
    cores (workers do not pick GPUs apart); the figures do not depend on it, as every student trains the first
    student's number of steps."""
    from rationalrewards.sketch.oracle import SketchOracle

    if jobs < 1:
        raise ValueError("jobs must be at least 1")

    settings = settings or AblationSettings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict[str, Any] = {"settings": asdict(settings), "stages": {}}
    bind_settings(out, asdict(settings), "PARROT ablation")
    world = build_world(out, settings)
    parrot = parrot_set(out, world, settings)
    direct_all = direct_set(out, world, settings)
    parrot_export = out / "data" / "parrot"
    training_set(parrot_export, out / "data" / "train-parrot")
    sizes = training_set(direct_all, out / "data" / "train-direct", like=parrot_export, seed=settings.world_seed)
    held = held_out_rows(out, world)
    results["data"] = {
        "train_pairs": len(world.train_pairs.read_text().splitlines()),
        "held_out_pairs": len(world.held_pairs.read_text().splitlines()),
        "parrot_kept": parrot.get("kept"),
        "parrot_rejected": parrot.get("rejected"),
        "parrot_rejections": parrot.get("rejections_by_reason") or parrot.get("rejections"),
        "rows_per_arm": sizes,
    }
    base = student_base(out, settings.student)
    teacher = _teacher(out, settings, settings.world_seed + 1)
    results["evaluation"] = {
        "chance": chance(world.held_pairs),
        "teacher_without_label": evaluate_critic(teacher, world.held_pairs, pointwise_images=settings.pointwise_images),
        "exact_oracle": evaluate_critic(
            SketchOracle(image_dirs=[]), world.held_pairs, pointwise_images=settings.pointwise_images
        ),
    }
    stage = StudentStage(out, base, world, held, settings)
    students = [(arm, seed) for seed in settings.seeds for arm in ARMS]
    done = {students[0]: stage.run(*students[0], steps=None)}  # the time budget buys the first student's steps ...
    steps = done[students[0]]["steps"]
    results["steps_per_student"] = steps
    if jobs > 1 and len(students) > 1:  # ... so the others can train side by side
        done |= stage.run_parallel(students[1:], steps=steps, jobs=jobs)
    for student in students:
        done[student] = done.get(student) or stage.run(*student, steps=steps)
    results["students"] = {f"{arm}-seed{seed}": done[(arm, seed)] for arm, seed in students}
    for name, student in results["students"].items():
        results["evaluation"][name] = student["evaluation"]
    results["loop"] = closing_the_loop(out, world, settings, results)
    results["seconds"] = round(time.perf_counter() - started, 1)
    write_outputs(out, results)
    return results


def closing_the_loop(out: Path, world: World, settings: AblationSettings, results: dict[str, Any]) -> dict[str, object]:
    from rationalrewards.sketch.oracle import SketchOracle

    suite = world.held_suite[: settings.loop_prompts]
    loop: dict[str, Any] = {"prompts": len(suite)}
    first_seed = settings.seeds[0]
    critics: dict[str, Any] = {"sketch oracle (privileged)": lambda: SketchOracle(image_dirs=[])}
    for arm in ARMS:
        checkpoint = results["students"][f"{arm}-seed{first_seed}"]["checkpoint"]
        critics[f"{arm} student (seed {first_seed})"] = lambda path=checkpoint: _student_critic(path, settings)
    for preset in settings.loop_presets:
        for name, make in critics.items():
            folder = out / "loop" / preset / name.split(" ")[0]
            loop[f"{preset} / {name}"] = gcr_accuracy(folder, make(), suite, preset)
    any_run = next(iter(v for k, v in loop.items() if k != "prompts"))
    loop["single-shot"] = {"accuracy": any_run["accuracy_initial"], "n": any_run["n"]}
    return loop


# ------------------------------------------------------------------ outputs -------------------------------------------


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def write_outputs(out: Path, results: dict[str, object]) -> None:
    from rationalrewards.plumbing.files import atomic_write_text

    atomic_write_text(out / "results.json", json.dumps(results, indent=1, default=str))
    plot_curves(results, out / "curves.png")
    atomic_write_text(out / "report.md", report_markdown(results))


def report_markdown(results: dict[str, Any]) -> str:
    s = results["settings"]
    data = results["data"]
    lines = [
        "# PARROT ablation in the sketch world",
        "",
        f"Students: SmolLM2-135M-Instruct reading perception transcripts (noise {s['transcript_noise']}), top "
        f"{s['train_layers']} of 30 layers fine-tuned, {results.get('steps_per_student')} steps of batch "
        f"{s['batch_size']} each (what the first student's {s['budget_minutes']}-minute budget bought on this "
        f"machine; every other student trains exactly as many steps), seeds {list(s['seeds'])}. Teacher: "
        f"sketch oracle with hallucination and perception noise {s['teacher_noise']}. Training pairs "
        f"{data['train_pairs']} (label noise {s['label_noise']}), held-out pairs {data['held_out_pairs']} (prompts "
        f"never seen in training, true labels). PARROT kept {data['parrot_kept']} pairs; each arm trains on "
        f"{data['rows_per_arm']} rows.",
        "",
        "## Held-out pairwise accuracy (summed-score rule, decisive pairs; 95% bootstrap interval)",
        "",
        "| judge | accuracy % | 95% CI | parse rate | ties | aspect agreement | text-faithfulness MAE |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, e in results["evaluation"].items():
        ci = e.get("accuracy_ci95")
        lines.append(
            f"| {name} | {_pct(e.get('accuracy'))} | "
            f"{'' if not ci else f'{_pct(ci[0])}-{_pct(ci[1])}'} | {_pct(e.get('parse_rate'))} | "
            f"{e.get('predicted_ties', '')} | {_pct(e.get('aspect_agreement'))} | "
            f"{'' if e.get('text_faithfulness_mae') is None else round(e['text_faithfulness_mae'], 2)} |"
        )
    lines += [
        "",
        "## Training",
        "",
        f"| student | steps | loss first -> last | curve (step: accuracy % on {s['curve_pairs']} held-out pairs, label "
        "ties included, abstentions left out) |",
        "|---|---|---|---|",
    ]
    for name, st in results["students"].items():
        curve = ", ".join(f"{c['step']}: {_pct(c['accuracy'])}" for c in st["curve"])
        losses = " -> ".join("n/a" if v is None else f"{v:.3f}" for v in (st["loss_first"], st["loss_last"]))
        lines.append(f"| {name} | {st['steps']} | {losses} | {curve} |")
    loop = results["loop"]
    lines += [
        "",
        f"## Closing the loop: GCR on {loop['prompts']} held-out prompts (ground-truth accuracy %)",
        "",
        "| run | single-shot | after GCR | critic calls |",
        "|---|---|---|---|",
    ]
    for name, run in loop.items():
        if name in ("prompts", "single-shot"):
            continue
        lines.append(
            f"| {name} | {_pct(run['accuracy_initial'])} | {_pct(run['accuracy_final'])} | {run['critique_calls']} |"
        )
    lines += [
        "",
        "![held-out accuracy during training and at the end](curves.png)",
        "",
        "The curve during training reads a few pairs on a looser rule (a tie predicted on a tie label counts right); "
        "the final figures read every decisive pair, and there a predicted tie or an abstention counts wrong.",
        "",
        "## Reading this",
        "",
    ]
    lines += verdict(results)
    lines += [
        "",
        "The students read perception transcripts, not pixels: this measures whether PARROT's rationales make a better "
        "critic when perception is given (with errors), not whether a model learns to see. The pixel version is the "
        "same distillation with a Qwen-VL student on a GPU (`rationalrewards distill --model QWEN_VL_DIR`).",
        "",
    ]
    return "\n".join(lines)


def verdict(results: dict[str, Any]) -> list[str]:
    """What the table supports, computed from it: each arm's accuracy over seeds, and whether the arms' intervals
    overlap (then the run does not tell them apart)."""
    by_arm: dict[str, list[dict[str, Any]]] = {}
    for student in results["students"].values():
        by_arm.setdefault(student["arm"], []).append(student["evaluation"])
    means = {
        arm: sum(e["accuracy"] for e in evals) / len(evals)
        for arm, evals in by_arm.items()
        if all(e.get("accuracy") is not None for e in evals)
    }
    if set(means) != set(ARMS):
        return ["- A student produced no readable judgement: no comparison can be made."]
    lines = ["- Mean held-out accuracy over seeds: " + ", ".join(f"{arm} {_pct(m)}%" for arm, m in means.items()) + "."]
    intervals = {arm: [e["accuracy_ci95"] for e in evals if e.get("accuracy_ci95")] for arm, evals in by_arm.items()}
    overlap = any(
        a[0] <= b[1] and b[0] <= a[1] for a in intervals.get("parrot", []) for b in intervals.get("direct", [])
    )
    gap = means["parrot"] - means["direct"]
    if overlap:
        lines.append(
            f"- PARROT - direct = {100 * gap:+.1f} points, inside overlapping 95% intervals: this run does not tell "
            "the arms apart."
        )
    else:
        better = "PARROT" if gap > 0 else "direct distillation"
        lines.append(f"- PARROT - direct = {100 * gap:+.1f} points with disjoint 95% intervals: {better} is ahead.")
    seeds = len(results["settings"]["seeds"])
    if seeds < 2:
        lines.append("- One seed only: the protocol asks for at least two before any claim.")
    return lines


def plot_curves(results: dict[str, Any], path: Path) -> None:
    """Two panels, as the two figures measure different things: left, the curve logged during training (a few
    held-out pairs, label ties included: a predicted tie on a tie label counts right, abstentions left out); right,
    the final accuracy on every decisive held-out pair (the table's figure, abstentions counted wrong) with its 95%
    interval, beside the teacher without label and chance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (curve, final) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [3, 2]})
    colours = {"parrot": "tab:blue", "direct": "tab:orange"}
    markers = ["o", "s", "^", "D"]
    for index, (name, st) in enumerate(results["students"].items()):
        points = [(c["step"], c["accuracy"]) for c in st["curve"] if c["accuracy"] is not None]
        if points:
            marker = markers[index % len(markers)]
            curve.plot(*zip(*points, strict=True), marker=marker, color=colours.get(st["arm"]), label=name)
    pairs = results["settings"]["curve_pairs"]
    curve.set_xlabel("training step")
    curve.set_ylabel(f"accuracy on {pairs} held-out pairs (label ties included)")
    curve.set_title("during training")
    curve.set_ylim(0, 1)
    curve.legend(fontsize=7)
    names = list(results["students"])
    for x, name in enumerate(names):
        evaluation = results["evaluation"][name]
        if evaluation.get("accuracy") is None:
            continue
        low, high = evaluation.get("accuracy_ci95") or (evaluation["accuracy"],) * 2
        y = evaluation["accuracy"]
        colour = colours.get(results["students"][name]["arm"])
        final.errorbar(x, y, yerr=[[y - low], [high - y]], fmt="o", color=colour, capsize=4)
    teacher = results["evaluation"]["teacher_without_label"]["accuracy"]
    if teacher is not None:
        final.axhline(teacher, color="grey", linestyle="--", label="teacher without label")
    final.axhline(0.5, color="black", linestyle=":", label="chance")
    decisive = results["evaluation"]["teacher_without_label"].get("decisive_pairs")
    final.set_xticks(range(len(names)), names, rotation=30, fontsize=7)
    final.set_ylabel(f"accuracy on {decisive} decisive held-out pairs")
    final.set_title("final, 95% bootstrap interval")
    final.set_ylim(0, 1)
    final.legend(fontsize=7)
    figure.suptitle("PARROT vs direct distillation (sketch world)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def copy_to_docs(out: Path, docs: Path) -> None:
    """The figure and the report, into the docs folder the README links (with a pointer to the page of earlier
    runs, `parrot_ablation_runs.md`, when the folder keeps one: the report replaces the page, never the history)."""
    docs.mkdir(parents=True, exist_ok=True)
    shutil.copy2(out / "curves.png", docs / "parrot_ablation_curves.png")
    text = (out / "report.md").read_text().replace("(curves.png)", "(parrot_ablation_curves.png)")
    if (docs / RUNS_PAGE).is_file():
        text += (
            f"\nEarlier runs of this experiment, and what each changed in the protocol: [{RUNS_PAGE}]({RUNS_PAGE}).\n"
        )
    (docs / "parrot_ablation.md").write_text(text)


__all__ = ["AblationSettings", "bootstrap_interval", "evaluate_critic", "run_ablation"]
