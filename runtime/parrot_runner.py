"""PARROT runs on the shared batch runner (`runtime.batch`): every valid preference pair as one thread under a SQLite
checkpointer, bounded concurrency against the teacher, resume after a crash without calling the teacher again for
finished pairs, and the export. The run directory follows `runtime.rundir` (one writer, resume only with the same
inputs and settings).

Output directory:
    run.json               format version, settings (filter, teacher, ...), the pairs' content hash
    validation.json        every bad input row with its reason (skipped, never silently dropped)
    results.jsonl          one line per finished pair (the resume key), kept or rejected with its reason
    pairwise.jsonl         SFT rows: student pairwise prompt (no label hint) -> validated rationale
    pointwise.jsonl        SFT rows: student pointwise prompt -> projected critique (with refinement)
    rejected.jsonl         rejected pairs with phase, reason and detail (and the rationale, for audits)
    card.json, card.md     counts, survival per phase and per reason, score histograms (score_histograms.png), teacher
Export files are assembled from `results.jsonl` sorted by pair id, so an interrupted-and-resumed run exports exactly
what an uninterrupted one does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict, cast

from rationalrewards.agents.preferences import PreferencePair, ValidationReport
from rationalrewards.graphs.parrot import ParrotConfig, ParrotContext, ParrotGraph
from rationalrewards.graphs.state import ParrotInput, Projection, Rejection, judgement_of
from rationalrewards.graphs.trace import Tracer
from rationalrewards.plumbing.choices import choice
from rationalrewards.plumbing.files import atomic_write_jsonl, atomic_write_text
from rationalrewards.rewardmodel.backends.base import Teacher, aclose_backends, backend_name
from rationalrewards.rewardmodel.prompts import AnyRequest, PromptProfile, build_messages
from rationalrewards.rewardmodel.schemas import CompareRequest, CritiqueRequest
from rationalrewards.runtime.batch import RESULTS, JobRunner, content_hash, run_thread
from rationalrewards.runtime.rundir import RunDirectory


class PairRecord(TypedDict):
    """One line of `results.jsonl`: a finished pair."""

    pair_id: str
    pair: dict[str, object]
    status: str  # "kept" | "rejected"
    stage: str | None
    reason: str | None
    detail: str | None
    attempts: int
    teacher_calls: int
    rationale: str | None
    judgement: dict[str, object] | None
    repredicted: str | None
    projections: dict[str, Projection] | None
    history: list[Rejection]


def sft_row(
    request: AnyRequest, answer: str, *, profile: PromptProfile = "release", **fields: object
) -> dict[str, object]:
    """One SFT row in the chat form trl and LLaMA-Factory read: the system turn (if the profile has one), the user turn
    as one string with an `<image>` marker where each image goes (LLaMA-Factory's sharegpt form), the answer as the
    assistant turn, and the image paths in order. The user turn is exactly the prompt the student is later served
    with (`build_messages` in the same profile): text parts are joined as a Qwen-VL chat template joins them, with
    nothing in between (each part ends its own line)."""
    messages = build_messages(request, profile=profile, image_url=lambda ref: ref.uri)
    turns: list[dict[str, str]] = []
    images: list[str] = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            turns.append({"role": message["role"], "content": content})
            continue
        text = ""
        for part in content:
            if part["type"] == "image_url":
                text += "<image>"
                images.append(part["image_url"]["url"])
            else:
                text += part["text"]
        turns.append({"role": message["role"], "content": text})
    return {"messages": [*turns, {"role": "assistant", "content": answer}], "images": images, **fields}


def sft_rows(pair: PreferencePair, record: PairRecord, profile: PromptProfile = "release") -> list[dict[str, object]]:
    """The pairwise row and up to two pointwise rows of a kept pair (student prompts never carry the label)."""
    common = {"pair_id": pair.pair_id, "task": pair.task.value, "prompt": pair.prompt}  # prompt: the held-out split key
    compare = CompareRequest.like(pair)
    rows = [sft_row(compare, record["rationale"] or "", profile=profile, **common, kind="pairwise", label=pair.label)]
    for side, image in (("A", pair.image_a), ("B", pair.image_b)):
        projection = (record["projections"] or {}).get(side) or {}
        if "critique" not in projection:
            continue
        request = CritiqueRequest.like(pair, image=image)
        rows.append(
            sft_row(
                request, str(projection["critique"]["raw_text"]), profile=profile, **common, kind="pointwise", side=side
            )
        )
    return rows


def parrot_sft_rows(
    pair: PreferencePair, output: Mapping[str, Any], profile: PromptProfile = "release"
) -> list[dict[str, object]]:
    """The SFT rows one PARROT graph run gives for `pair` (`output`: what `build_parrot_graph().ainvoke` returned):
    the pairwise row and up to two pointwise rows when the pair was kept, none when it was rejected."""
    record = _pair_record(pair, dict(output))
    return sft_rows(pair, record, profile) if record["status"] == "kept" else []


def pairs_in_flight(teacher_requests: int) -> int:
    """Pairs to keep in flight for a teacher that serves `teacher_requests` requests at once: a quarter more, so the
    teacher's slots stay full while some pairs parse, checkpoint and route between their calls. Measured in
    `benchmarks/parrot_throughput.py` (64 slots, 300 ms): 0.82 of the ideal with 64 pairs in flight, 0.92 with 80."""
    if teacher_requests < 1:
        raise ValueError("the teacher's concurrency must be at least 1")
    return teacher_requests + max(1, teacher_requests // 4)


class ParrotRunner(JobRunner):
    job = "parrot"

    def __init__(
        self,
        out: str | Path,
        *,
        teacher: Teacher,
        config: ParrotConfig,
        concurrency: int = 16,
        progress: bool = True,
        teacher_name: str = "",
        settings: dict[str, Any] | None = None,
        force_new: bool = False,
        keep_history: bool = False,
        durability: str | None = None,
        checkpointer: str | None = None,
        student_prompts: str = "release",
    ) -> None:
        """`student_prompts`: the prompt profile the SFT rows are written in, i.e. how the distilled student will be
        asked (`release`: the released checkpoints' format; `house`: ours). Export only: the teacher's own requests
        always use the house prompts (no PARROT prompt was released)."""
        self.teacher, self.config = teacher, config
        self.student_prompts = choice(student_prompts, PromptProfile, "prompt profile")
        self.teacher_name = teacher_name or backend_name(teacher)
        super().__init__(
            out,
            concurrency=concurrency,
            progress=progress,
            force_new=force_new,
            keep_history=keep_history,
            durability=durability,
            checkpointer=checkpointer,
            settings={"config": config.as_dict(), "teacher": self.teacher_name} | (settings or {}),
        )

    async def run(self, report: ValidationReport, run_dir: RunDirectory | None = None) -> dict[str, object]:
        owned = run_dir is None
        run_dir = run_dir or self.open()
        try:
            return await self._run(report, run_dir)
        finally:
            if owned:
                run_dir.close()

    async def _run(self, report: ValidationReport, run_dir: RunDirectory) -> dict[str, object]:
        run_dir.write_json("validation.json", {"valid_pairs": len(report.pairs), "bad_rows": report.bad_rows})
        if not report.pairs:
            raise ValueError(f"no valid preference pairs to run (see {run_dir.file('validation.json')})")
        run_dir.bind_inputs(content_hash(p.to_json() for p in report.pairs), len(report.pairs))
        tracer = Tracer(run_dir.file("trace.jsonl"), run_id=self.path.name)
        context = ParrotContext(teacher=self.teacher, tracer=tracer)
        batch = self.batch(run_dir, key="pair_id")
        graph = ParrotGraph(self.config)

        async def work(compiled: object, pair_id: str, pair: PreferencePair) -> dict[str, object] | None:
            async def first_input() -> dict[str, object]:
                return dict(ParrotInput(pair=pair.to_json()))

            values = await run_thread(
                compiled,
                batch.thread_id(pair_id),
                first_input,
                context=context,
                recursion_limit=20 + 10 * self.config.retries,
                durability=batch.durability,
            )
            if values is None or values.get("status") not in ("kept", "rejected"):
                raise RuntimeError(f"pair {pair_id} stopped without a verdict")
            record = _pair_record(pair, values)
            tracer.emit(
                "parrot_export",
                pair_id=pair_id,
                status=record["status"],
                reason=record["reason"],
                stage=record["stage"],
                attempts=record["attempts"],
                teacher_calls=record["teacher_calls"],
            )
            return dict(record)

        try:
            outcome = await batch.run(
                [(p.pair_id, p) for p in report.pairs],
                build_graph=lambda saver: graph.compile(checkpointer=saver),
                work=work,
            )
        finally:
            tracer.close()
            await aclose_backends(self.teacher)
        card = self.export(report, run_dir)
        run_dir.write_json(
            "timing.json", {"seconds": outcome.seconds, "pairs_run_now": outcome.ran, "concurrency": self.concurrency}
        )
        return card | {"out": str(self.path), "failed": len(outcome.failures), "failures": outcome.failures}

    def export(self, report: ValidationReport, run_dir: RunDirectory) -> dict[str, object]:
        return export_run(
            report, run_dir, config=self.config, teacher_name=self.teacher_name, student_prompts=self.student_prompts
        )


def export_merged(run_dir: RunDirectory, cards: list[dict[str, Any]]) -> dict[str, Any]:
    """The export of shards merged into `run_dir` (`runtime.merge`): SFT rows, card and histograms over all of them."""
    if not cards:
        raise ValueError("the shards have no card.json: finish each shard's run before merging")
    pairs = [PreferencePair.from_json(r["pair"]) for r in run_dir.records(RESULTS, "pair_id").values()]
    config = ParrotConfig(**cards[0]["settings"])
    card = export_run(
        ValidationReport(pairs=pairs),
        run_dir,
        config=config,
        teacher_name=cards[0]["teacher"],
        student_prompts=choice(cards[0]["student_prompts"], PromptProfile, "prompt profile"),
    )
    return card | {"out": str(run_dir.path)}


def export_run(
    report: ValidationReport,
    run_dir: RunDirectory,
    *,
    config: ParrotConfig,
    teacher_name: str,
    student_prompts: PromptProfile,
) -> dict[str, object]:
    """Write the SFT rows (pairwise, pointwise), the rejected pairs, the card and the score histograms of a run."""
    finished = run_dir.records(RESULTS, "pair_id")
    records = [finished[p.pair_id] for p in sorted(report.pairs, key=lambda p: p.pair_id) if p.pair_id in finished]
    pairwise: list[dict[str, object]] = []
    pointwise: list[dict[str, object]] = []
    rejected: list[dict[str, object]] = []
    for record in records:
        pair = PreferencePair.from_json(record["pair"])
        if record["status"] == "kept":
            for row in sft_rows(
                pair, cast(PairRecord, record), student_prompts
            ):  # a results.jsonl line written from a PairRecord
                (pairwise if row["kind"] == "pairwise" else pointwise).append(row)
        else:
            rejected.append(
                {
                    "pair_id": pair.pair_id,
                    "task": pair.task.value,
                    "label": pair.label,
                    "stage": record["stage"],
                    "reason": record["reason"],
                    "detail": record.get("detail"),
                    "rationale": record["rationale"],
                    "attempts": record["attempts"],
                }
            )
    for name, rows in (("pairwise.jsonl", pairwise), ("pointwise.jsonl", pointwise), ("rejected.jsonl", rejected)):
        atomic_write_jsonl(run_dir.file(name), rows)
    card = build_card(records, report, config, teacher_name) | {
        "student_prompts": student_prompts,
        "teacher_prompts": "house",
    }
    run_dir.write_json("card.json", card)
    atomic_write_text(run_dir.file("card.md"), card_markdown(card))
    plot_histograms(records, run_dir.file("score_histograms.png"))
    return card


def _pair_record(pair: PreferencePair, values: dict[str, Any]) -> PairRecord:
    return PairRecord(
        pair_id=pair.pair_id,
        pair=pair.to_json(),
        status=values["status"],
        stage=values.get("stage"),
        reason=values.get("reason"),
        detail=values.get("detail"),
        attempts=values.get("attempt", 0) + 1,
        teacher_calls=values.get("teacher_calls", 0),
        rationale=values.get("rationale"),
        judgement=values.get("judgement"),
        repredicted=values.get("repredicted"),
        projections=values.get("projections"),
        history=values.get("history", []),
    )


def build_card(
    records: list[dict[str, Any]], report: ValidationReport, config: ParrotConfig, teacher: str
) -> dict[str, object]:
    total = len(records)
    kept = [r for r in records if r["status"] == "kept"]
    reasons = Counter(r["reason"] for r in records if r["status"] == "rejected")
    stages = Counter(r["stage"] for r in records if r["status"] == "rejected")
    anchored_ok = total - stages["anchored"]
    parsed_ok = anchored_ok - stages["parse"]
    filtered_ok = parsed_ok - stages["filter"]
    projected = sum(
        1 for r in kept for side in ("A", "B") if "critique" in ((r.get("projections") or {}).get(side) or {})
    )
    histograms: dict[str, Counter[str]] = {}
    for aspect, score in _kept_scores(records):
        histograms.setdefault(aspect, Counter())["N/A" if score is None else f"{score:g}"] += 1
    return {
        "pairs": len(report.pairs) + len(report.bad_rows),
        "valid_pairs": len(report.pairs),
        "bad_rows": len(report.bad_rows),
        "finished": total,
        "kept": len(kept),
        "rejected": total - len(kept),
        "survival_rate": round(len(kept) / total, 4) if total else None,
        "survival_by_phase": {"anchored": anchored_ok, "parsed": parsed_ok, "filtered": filtered_ok},
        "rejected_by_reason": dict(sorted(reasons.items())),
        "pairwise_rows": len(kept),
        "pointwise_rows": projected,
        "projection_failures": 2 * len(kept) - projected if config.project else 0,
        "teacher_calls": sum(r.get("teacher_calls", 0) for r in records),
        "score_histograms": {a: dict(sorted(c.items())) for a, c in sorted(histograms.items())},
        "teacher": teacher,
        "settings": config.as_dict(),
    }


def _kept_scores(records: list[dict[str, object]]) -> list[tuple[str, float | None]]:
    """(aspect, score) for both sides of every kept pairwise rationale."""
    scores = []
    for record in records:
        judgement = judgement_of(record) if record["status"] == "kept" else None
        if judgement is not None:
            scores += [item for side in (judgement.scores_a, judgement.scores_b) for item in side.items()]
    return scores


def card_markdown(card: dict[str, Any]) -> str:
    import json

    def readable(value: object) -> str:
        return (
            "yes"
            if value is True
            else "no"
            if value is False
            else json.dumps(value)
            if isinstance(value, dict | list)
            else str(value)
        )

    settings = "; ".join(f"{k.replace('_', ' ')}: {readable(v)}" for k, v in card["settings"].items())
    lines = [
        "# PARROT data card",
        "",
        f"- teacher: `{card['teacher']}`; {settings}",
        f"- prompts: teacher requests `{card.get('teacher_prompts', 'house')}`; SFT rows (the student's requests) "
        f"`{card.get('student_prompts', 'house')}`",
        f"- pairs read: {card['pairs']} ({card['bad_rows']} bad rows skipped, see validation.json)",
        f"- kept: {card['kept']} of {card['finished']} (survival {card['survival_rate']})",
        f"- rows: {card['pairwise_rows']} pairwise, {card['pointwise_rows']} pointwise",
        f"- teacher calls: {card['teacher_calls']}",
        "",
        "![per-aspect scores of the kept pairwise rationales](score_histograms.png)",
        "",
        "## Survival by phase",
        "",
        "| phase | pairs left |",
        "|---|---|",
    ]
    lines += [f"| {phase} | {n} |" for phase, n in card["survival_by_phase"].items()]
    lines += ["", "## Rejections by reason", "", "| reason | pairs |", "|---|---|"]
    lines += [f"| {reason} | {n} |" for reason, n in card["rejected_by_reason"].items()] or ["| (none) | 0 |"]
    lines += [
        "",
        "## Per-aspect scores of kept pairwise rationales (the picture above)",
        "",
    ]
    for aspect, counts in card["score_histograms"].items():
        lines.append(f"- {aspect}: " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    return "\n".join(lines) + "\n"


def plot_histograms(records: list[dict[str, object]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_aspect: dict[str, list[float]] = {}
    for aspect, score in _kept_scores(records):
        values = by_aspect.setdefault(aspect, [])
        if score is not None:
            values.append(score)
    aspects = sorted(by_aspect) or ["(no kept pairs)"]
    fig, axes = plt.subplots(1, len(aspects), figsize=(4 * len(aspects), 3), squeeze=False)
    for ax, aspect in zip(axes[0], aspects, strict=True):
        ax.hist(
            by_aspect.get(aspect, []),
            bins=[1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5],
            color="#4a7bd0",
            edgecolor="white",
            align="left",
        )
        ax.set_title(aspect, fontsize=10)
        ax.set_xlabel("score")
    axes[0][0].set_ylabel("rationale sides")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
