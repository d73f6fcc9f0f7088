"""Importable entry points behind `rationalrewards refine`, `rationalrewards demo` and `rationalrewards report`."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from rationalrewards.agents.factory import (
    generator_from_spec,
    grader_from_spec,
    refiner_from_spec,
    reward_model_from_spec,
    teacher_from_spec,
)
from rationalrewards.agents.specs import HttpBackend, RayBackend, WorldBackend, parse_spec
from rationalrewards.agents.suite import Suite, SuiteRow
from rationalrewards.agents.world import world_named
from rationalrewards.plumbing.choices import choice
from rationalrewards.runtime._shards import parse_shard, shard_items
from rationalrewards.runtime.batch import content_hash
from rationalrewards.runtime.gcr_runner import GCRRunner, GCRSummary
from rationalrewards.runtime.job_configs import EvalJob, ParrotJob, RefineJob


def refine_job(job: RefineJob) -> GCRSummary:
    if not job.rows:
        raise ValueError("nothing to refine: the job has no rows (give a prompt or a suite)")
    config = job.config()
    generator, critic = parse_spec(job.generator, "generator"), parse_spec(job.critic, "critic")
    critic_options: dict[str, Any] = {}
    if isinstance(critic, HttpBackend):
        critic_options = {"concurrency": max(job.concurrency, 8), "on_server_error": "abstain"}
    elif isinstance(critic, RayBackend):
        critic_options = {"replicas": job.replicas, "device": job.device}
    if job.samples != 1:
        critic_options["samples"] = job.samples
    settings = {  # specs as text: a login in a URL is never written down
        "generator": generator.text,
        "critic": critic.text,
        "critic_model": job.critic_model,
        "critic_prompts": job.prompts,
        "critic_max_tokens": job.max_tokens,
        **({"critic_samples": job.samples} if job.samples != 1 else {}),
        "refiner": job.refiner,
        "refiner_model": job.refiner_model,
        "device": job.device,
    } | ({"generator_lora": job.lora} if job.lora else {})  # only when set: older run directories still resume
    if job.trust_generator_scenes:
        settings["trust_generator_scenes"] = True
    if job.shard is not None:  # the whole suite's identity: shards of one job share it (and one trace id)
        parse_shard(job.shard)
        settings |= {"shard": job.shard, "shard_of": content_hash(row.model_dump() for row in job.rows)}
    runner = GCRRunner(
        job.out,
        generator=generator_from_spec(
            generator,
            job.out / "images",
            device=job.device,
            lora=job.lora,
            replicas=job.replicas if isinstance(generator, RayBackend) else 1,
            trust_scenes=job.trust_generator_scenes,
        ),
        critic=reward_model_from_spec(
            critic, model=job.critic_model, prompts=job.prompts, max_tokens=job.max_tokens, **critic_options
        ),
        refiner=refiner_from_spec(job.refiner, model=job.refiner_model),
        config=config,
        grader=grader_from_spec(job.grader, generator=generator),
        concurrency=job.concurrency,
        progress=job.progress,
        settings=settings,
        force_new=job.force_new,
        keep_history=job.keep_history,
        durability=job.durability,
        checkpointer=job.checkpointer,
    )
    rows = job.rows
    if job.shard is not None:  # ids from the position in the whole suite, so shards and a single run name items alike
        rows = shard_items(
            Suite(row.model_copy(update={"id": row.sample_id(i)}) for i, row in enumerate(rows)), job.shard
        )
    summary = asyncio.run(runner.run(rows))
    summary["report"] = str(job.out / "report.html")
    return summary


def demo_job(out: Path, progress: bool = True) -> dict[str, object]:
    """The README's main job: the built-in sketch suite through the `paper` and `deep` presets."""
    rows = [SuiteRow.model_validate(row) for row in world_named("sketch").suite("demo", 0)]
    started = time.perf_counter()
    results = {}
    for preset in ("paper", "deep"):
        results[preset] = refine_job(RefineJob(rows=rows, out=out / preset, preset=preset, progress=progress))
    keys = (
        "n",
        "reward_initial",
        "reward_final",
        "accuracy_initial",
        "accuracy_final",
        "generations",
        "critique_calls",
        "report",
    )
    summary: dict[str, Any] = {
        preset: {k: s.get(k) for k in keys} | {"per_tag": s.get("per_tag")} for preset, s in results.items()
    }
    # Top-level figures are the `deep` run's (the loop at its best); both presets stay under their names.
    summary |= {"preset": "deep"} | summary["deep"]
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary


def demo_table(summary: dict[str, Any]) -> str:
    lines = [
        "Generate-Critique-Refine on the built-in sketch suite (sketch generator, sketch oracle critic)",
        "",
        f"{'preset':<7} {'prompts':>7} {'reward first':>13} {'reward kept':>12} {'accuracy first':>15} {'accuracy kept':>14} {'images':>7}",
    ]
    for preset in ("paper", "deep"):
        s = summary[preset]
        lines.append(
            f"{preset:<7} {s['n']:>7} {s['reward_initial']:>13.3f} {s['reward_final']:>12.3f} "
            f"{s['accuracy_initial']:>15.3f} {s['accuracy_final']:>14.3f} {s['generations']:>7}"
        )
    lines.append("")
    lines += [f"report ({preset}): {summary[preset]['report']}" for preset in ("paper", "deep")]
    lines.append(
        f"({summary['seconds']} s; accuracy is GenEval-style ground truth from the scene graphs, mean over tags)"
    )
    return "\n".join(lines)


def parrot_job(job: ParrotJob) -> dict[str, Any]:
    from rationalrewards.agents.columns import ColumnMap
    from rationalrewards.agents.preferences import load_preferences
    from rationalrewards.graphs.parrot import FilterKind, ParrotConfig
    from rationalrewards.runtime.parrot_runner import ParrotRunner, pairs_in_flight

    world = world_named(job.world) if job.world is not None else None
    if world is None and job.pairs is None:
        raise ValueError("give --pairs FILE, or --world NAME to make pairs first")
    teacher_spec = parse_spec(job.teacher, "teacher")
    options: dict[str, object] = {}
    if isinstance(teacher_spec, WorldBackend):  # a world's teacher: its noise knobs, and where its images are
        # Pairs from a data file: the world's images may be stored inline (bytes), away from their sidecars; they are
        # found by content beside the data (an `images/` folder next to the file or directory, or its own folder).
        base = job.pairs.parent if job.pairs is not None else None
        options = {"image_dirs": [base / "images", base] if base is not None else []}
        if world is not None:
            options = {
                "hallucination": job.teacher_noise,
                "perception_noise": job.perception_noise,
                "seed": job.seed,
                "image_dirs": [job.out / "world" / "images"],
            }
    elif isinstance(teacher_spec, HttpBackend):
        options = {"concurrency": job.concurrency, "on_server_error": "raise", "max_tokens": 2048}
    teacher = teacher_from_spec(teacher_spec, model=job.teacher_model, **options)
    config = ParrotConfig(
        filter=choice(job.filter, FilterKind, "filter"),
        repredict_with_images=job.repredict_with_images,
        retries=job.retries,
    )
    settings = {
        "teacher_spec": teacher_spec.text,
        "teacher_model": job.teacher_model,
        "swap_augment": job.swap_augment,
        "label_map": job.label_map,
        "columns": job.columns,
        "world": job.world,
        "teacher_noise": job.teacher_noise,
        "perception_noise": job.perception_noise,
    }
    if world is not None:
        settings |= {"pairs_count": job.pairs_count, "label_noise": job.label_noise, "seed": job.seed}
    if job.shard is not None:  # the whole input's identity: shards of one job share it (and one trace id)
        parse_shard(job.shard)
        whole = job.pairs.read_bytes() if job.pairs is not None and job.pairs.is_file() else str(job.pairs)
        settings |= {"shard": job.shard, "shard_of": content_hash([str(whole), job.pairs_count, job.seed])}
    runner = ParrotRunner(
        job.out,
        teacher=teacher,
        config=config,
        concurrency=pairs_in_flight(job.concurrency),
        progress=job.progress,
        settings=settings,
        force_new=job.force_new,
        keep_history=job.keep_history,
        durability=job.durability,
        checkpointer=job.checkpointer,
        student_prompts=job.student_prompts,
    )
    with runner.open() as run_dir:
        pairs_path = job.pairs
        if world is not None:  # made inside the locked run directory
            pairs_path = world.pairs(job.out, job.pairs_count, seed=job.seed, label_noise=job.label_noise)
        assert pairs_path is not None
        # Images stored inline (bytes, datasets' structs) are written once under the run, so its state and
        # checkpoints hold small refs.
        report = load_preferences(
            pairs_path,
            swap_augment=job.swap_augment,
            label_map=job.label_map,
            columns=ColumnMap.parse(job.columns),
            image_dir=job.out / "images",
        )
        report.pairs = list(shard_items(report.pairs, job.shard))
        result = asyncio.run(runner.run(report, run_dir))
    if world is not None:
        result["audit"] = world.audit_parrot(job.out)
    return result


EVAL_RULES = ("ours", "release")
EVAL_MODES = ("all", "text", "visual")


def eval_job(job: EvalJob) -> dict[str, object]:
    """Pairwise preference accuracy of a critic on a benchmark or preference set as published (`runtime/eval_runner.py`
    says how it streams, resumes and counts). Writes `judgements.jsonl`, `eval.json` (the figures, naming the rule)
    and `report.html` under `--out`."""
    from collections.abc import Iterator
    from itertools import islice

    from rationalrewards.agents.benchmarks import EvalPair, eval_rows
    from rationalrewards.agents.columns import ColumnMap
    from rationalrewards.agents.labels import parse_label_map
    from rationalrewards.agents.rows import count_rows
    from rationalrewards.plumbing.files import atomic_write_text
    from rationalrewards.rewardmodel.backends.base import aclose_backends, prompt_profile_of
    from rationalrewards.runtime.eval_report import write_eval_report
    from rationalrewards.runtime.eval_runner import JUDGEMENTS, judge_stream, read_records, summarise
    from rationalrewards.runtime.rundir import RunDirectory

    if job.rules not in EVAL_RULES:
        raise ValueError(f"unknown rules {job.rules!r}; choose one of {', '.join(EVAL_RULES)}")
    if job.mode not in EVAL_MODES:
        raise ValueError(f"unknown mode {job.mode!r}; choose one of {', '.join(EVAL_MODES)}")
    if job.samples < 1 or (job.limit is not None and job.limit < 1):
        raise ValueError("--samples and --limit must be at least 1")
    if job.data is not None and job.pairs is not None:
        raise ValueError("give --data or --pairs, not both")
    columns, label_map = ColumnMap.parse(job.columns), parse_label_map(job.label_map)
    critic = parse_spec(job.critic, "critic")
    data = job.data or job.pairs
    bench = "pairs" if job.pairs is not None or job.world is not None else job.bench
    settings: dict[str, object] = {
        "data": str(data) if data is not None else None,
        "bench": bench,
        "columns": job.columns,
        "label_map": job.label_map,
        "critic": critic.text,
        "model": job.model,
        "prompts": job.prompts,
        "max_tokens": job.max_tokens,
        "samples": job.samples,
        "mode": job.mode,
        "tolerance": job.tolerance,
        "world": job.world,
        "pairs_count": job.pairs_count if job.world else None,
        "seed": job.seed if job.world else None,
    }
    owned = ("eval.json", JUDGEMENTS, "report.html", "world")
    with RunDirectory(job.out).open("eval", settings, info={"limit": job.limit}, fresh=not job.resume, owned=owned):
        if job.world is not None:  # made inside the locked run directory
            data = world_named(job.world).pairs(job.out, job.pairs_count, seed=job.seed, label_noise=0.0)
        if data is None:
            raise ValueError("give --data FILE (a benchmark), --pairs FILE, or --world NAME to make pairs first")
        rows = eval_rows(data, bench, columns=columns, label_map=label_map)
        if job.progress:  # the CLI's stderr; a library caller reads `bench` in the result
            from rich.console import Console

            described = f" ({rows.layout.description})" if rows.layout.description else ""
            Console(stderr=True).print(f"reading {data} as {rows.layout.name}{described}", highlight=False)
        judgements = job.out / JUDGEMENTS
        done = {str(r["pair_id"]) for r in read_records(judgements)} if job.resume else set()
        items: Iterator[EvalPair] = (item for item in rows if item.pair.pair_id not in done)
        if job.limit is not None:
            items = islice(items, max(0, job.limit - len(done)))
        options: dict[str, object] = {"samples": job.samples}
        if isinstance(critic, HttpBackend):
            options |= {"concurrency": job.concurrency, "on_server_error": "abstain"}
        backend = reward_model_from_spec(
            critic, model=job.model, prompts=job.prompts, max_tokens=job.max_tokens, **options
        )
        rows_total = count_rows(data) if rows.layout.name != "hpd" else None
        total = min(job.limit, rows_total) if job.limit and rows_total else (job.limit or rows_total)

        async def judge() -> int:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            columns_shown = (TextColumn("[bold]eval"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            try:
                with Progress(*columns_shown, console=Console(stderr=True), disable=not job.progress) as bar:
                    task = bar.add_task("eval", total=total, completed=len(done))
                    return await judge_stream(
                        backend,
                        iter(items),
                        judgements,
                        mode=job.mode,  # type: ignore[arg-type]  # checked above
                        tolerance=job.tolerance,
                        concurrency=job.concurrency,
                        on_done=lambda n: bar.advance(task, n),
                    )
            finally:
                await aclose_backends(backend)

        judged_now = asyncio.run(judge())
        summary = summarise(judgements)
        if summary.overall.n == 0:
            detail = "; ".join(f"row {b['row']}: {b['reason']}" for b in rows.bad_rows[:5])
            raise ValueError(f"no valid preference pairs in {data}" + (f" ({detail})" if detail else ""))
        figures = summary.figures()
        headline = figures["release_accuracy"] if job.rules == "release" else figures["accuracy"]
        rule = (
            "release: missing, unreadable or N/A scores count 2.5; summed scores decide; no-text requests skipped"
            if job.rules == "release"
            else "ours: summed scores over aspects both sides scored decide; abstentions and ties counted apart"
        )
        result = figures | {
            "accuracy": headline,
            "accuracy_ours": figures["accuracy"],
            "rules": job.rules,
            "rule": rule,
            "mode": job.mode,
            "bench": rows.layout.name,
            "bad_rows": len(rows.bad_rows),
            "bad_row_examples": rows.bad_rows[:20],
            "judged_this_run": judged_now,
            "critic": critic.text,
            "samples": job.samples,
            "prompts": prompt_profile_of(backend),
            "tolerance": job.tolerance,
            "pairs_file": str(data),
        }
        atomic_write_text(job.out / "eval.json", json.dumps(result, indent=1))
        write_eval_report(job.out, result, summary)
    return result | {"out": str(job.out)}
