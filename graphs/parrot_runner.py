"""PARROT runs: every valid preference pair as one thread under a SQLite checkpointer, bounded concurrency against the
teacher, resume after a crash without calling the teacher again for finished pairs, and the export.

Output directory:
    validation.json        every bad input row with its reason (skipped, never silently dropped)
    done/<pair_id>.json    one file per finished pair, written atomically (the resume key)
    pairwise.jsonl         SFT rows: student pairwise prompt (no label hint) -> validated rationale
    pointwise.jsonl        SFT rows: student pointwise prompt -> projected critique (with refinement)
    rejected.jsonl         rejected pairs with phase and reason (and the rationale, for audits)
    card.json, card.md     counts, survival per phase and per reason, score histograms (score_histograms.png), teacher
    run.json               settings and timings (everything that may differ between an interrupted and a clean run)
Export files are assembled from `done/` sorted by pair id, so an interrupted-and-resumed run exports exactly what an
uninterrupted one does.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import structlog

from rationalrewards.agents.preferences import PreferencePair, ValidationReport
from rationalrewards.graphs.checkpoints import sqlite_checkpointer
from rationalrewards.graphs.parrot import ParrotConfig, ParrotContext, ParrotGraph
from rationalrewards.graphs.trace import Tracer
from rationalrewards.rewardmodel.backends.base import RewardModel, aclose_backends
from rationalrewards.rewardmodel.prompts import Message, pairwise_messages, pointwise_messages

log = structlog.get_logger(__name__)
PARROT_FORMAT_VERSION = 1


def _safe_name(pair_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._~-]", "_", pair_id)


def _write_atomic(path: Path, text: str) -> None:
    from rationalrewards.rewardmodel.files import atomic_write_text

    atomic_write_text(path, text)


def flatten_for_sft(messages: list[Message], paths: dict[str, str]) -> tuple[str, list[str]]:
    """User content as one string with an `<image>` marker where each image goes (LLaMA-Factory's sharegpt form; trl
    reads the same rows), plus the image paths in order."""
    parts, images = [], []
    for part in messages[0]["content"]:
        if part["type"] == "image_url":
            parts.append("<image>")
            images.append(paths[part["image_url"]["url"]])
        else:
            parts.append(part["text"])
    return "\n".join(parts), images


def sft_rows(pair: PreferencePair, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The pairwise row and up to two pointwise rows of a kept pair (student prompts never carry the label)."""
    paths = {"A": pair.image_a.uri, "B": pair.image_b.uri, "S": pair.source_image.uri if pair.source_image else ""}
    placeholder = {"A": "image://A", "B": "image://B", "S": "image://S"}
    by_url = {placeholder[k]: v for k, v in paths.items()}
    source = placeholder["S"] if pair.source_image else None
    student = pairwise_messages(pair.prompt, placeholder["A"], placeholder["B"], pair.task, source_image_url=source)
    text, images = flatten_for_sft(student, by_url)
    common = {"pair_id": pair.pair_id, "task": pair.task.value}
    rows = [{"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": values["rationale"]}],
             "images": images, **common, "kind": "pairwise", "label": pair.label}]
    for side in ("A", "B"):
        projection = (values.get("projections") or {}).get(side) or {}
        if "text" not in projection:
            continue
        student = pointwise_messages(pair.prompt, placeholder[side], pair.task, source_image_url=source, with_refinement=True)
        text, images = flatten_for_sft(student, by_url)
        rows.append({"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": projection["text"]}],
                     "images": images, **common, "kind": "pointwise", "side": side})
    return rows


class ParrotRunner:
    def __init__(self, out: str | Path, *, teacher: RewardModel, config: ParrotConfig, concurrency: int = 16,
                 progress: bool = True, teacher_name: str = "") -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.out = Path(out)
        self.teacher, self.config, self.concurrency, self.progress = teacher, config, concurrency, progress
        self.teacher_name = teacher_name or type(teacher).__name__

    @property
    def done_dir(self) -> Path:
        return self.out / "done"

    def _prepare(self) -> None:
        manifest_path = self.out / "parrot.json"
        manifest = {"version": PARROT_FORMAT_VERSION, "config": self.config.as_dict(), "teacher": self.teacher_name}
        if manifest_path.exists():
            existing = json.loads(manifest_path.read_text())
            if existing != manifest:
                raise ValueError(f"{self.out} holds a PARROT run with other settings or format ({existing}); use a new --out")
        self.done_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(manifest_path, json.dumps(manifest, indent=1))

    async def run(self, report: ValidationReport) -> dict[str, Any]:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._prepare()
        _write_atomic(self.out / "validation.json", json.dumps({"valid_pairs": len(report.pairs), "bad_rows": report.bad_rows}, indent=1))
        if not report.pairs:
            raise ValueError("no valid preference pairs to run (see validation.json)")
        pending = [p for p in report.pairs if not (self.done_dir / f"{_safe_name(p.pair_id)}.json").exists()]
        tracer = Tracer(self.out / "trace.jsonl", run_id=self.out.name)
        context = ParrotContext(teacher=self.teacher, tracer=tracer)
        semaphore = asyncio.Semaphore(self.concurrency)
        started = time.perf_counter()
        async with sqlite_checkpointer(self.out / "checkpoints.sqlite") as saver:
            graph = ParrotGraph(self.config).compile(checkpointer=saver)
            columns = (TextColumn("[bold]PARROT"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, disable=not self.progress) as bar:
                task = bar.add_task("pairs", total=len(report.pairs), completed=len(report.pairs) - len(pending))

                async def one(pair: PreferencePair) -> None:
                    async with semaphore:
                        config = {"configurable": {"thread_id": pair.pair_id}, "recursion_limit": 20 + 10 * self.config.retries}
                        snapshot = await graph.aget_state(config)
                        if snapshot.next:
                            values = await graph.ainvoke(None, config, context=context)
                        elif snapshot.values.get("status") in ("kept", "rejected"):
                            values = snapshot.values
                        else:
                            values = await graph.ainvoke({"pair": pair.to_json()}, config, context=context)
                        self._record(pair, values)
                        bar.advance(task)

                await asyncio.gather(*(one(p) for p in pending))
        await aclose_backends(self.teacher)
        card = self.export(report)
        run = {"seconds": round(time.perf_counter() - started, 2), "pairs_run_now": len(pending), "concurrency": self.concurrency}
        _write_atomic(self.out / "run.json", json.dumps(run, indent=1))
        return card | {"out": str(self.out)}

    def _record(self, pair: PreferencePair, values: dict[str, Any]) -> None:
        record = {"pair": pair.to_json(), "status": values.get("status"), "stage": values.get("stage"), "reason": values.get("reason"),
                  "attempts": values.get("attempt", 0) + 1, "teacher_calls": values.get("teacher_calls", 0),
                  "rationale": values.get("rationale"), "judgement": values.get("judgement"), "repredicted": values.get("repredicted"),
                  "projections": values.get("projections"), "history": values.get("history", [])}
        _write_atomic(self.done_dir / f"{_safe_name(pair.pair_id)}.json", json.dumps(record, ensure_ascii=False))

    def export(self, report: ValidationReport) -> dict[str, Any]:
        records = []
        for pair in sorted(report.pairs, key=lambda p: p.pair_id):
            path = self.done_dir / f"{_safe_name(pair.pair_id)}.json"
            if path.exists():
                records.append(json.loads(path.read_text()))
        pairwise, pointwise, rejected = [], [], []
        for record in records:
            pair = PreferencePair.from_json(record["pair"])
            if record["status"] == "kept":
                for row in sft_rows(pair, record):
                    (pairwise if row["kind"] == "pairwise" else pointwise).append(row)
            else:
                rejected.append({"pair_id": pair.pair_id, "task": pair.task.value, "label": pair.label, "stage": record["stage"],
                                 "reason": record["reason"], "rationale": record["rationale"], "attempts": record["attempts"]})
        for name, rows in (("pairwise.jsonl", pairwise), ("pointwise.jsonl", pointwise), ("rejected.jsonl", rejected)):
            _write_atomic(self.out / name, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        card = build_card(records, report, self.config, self.teacher_name)
        _write_atomic(self.out / "card.json", json.dumps(card, indent=1))
        _write_atomic(self.out / "card.md", card_markdown(card))
        plot_histograms(records, self.out / "score_histograms.png")
        return card


def build_card(records: list[dict[str, Any]], report: ValidationReport, config: ParrotConfig, teacher: str) -> dict[str, Any]:
    total = len(records)
    kept = [r for r in records if r["status"] == "kept"]
    reasons = Counter(r["reason"].split(":")[0] for r in records if r["status"] == "rejected")
    stages = Counter(r["stage"] for r in records if r["status"] == "rejected")
    anchored_ok = total - stages["anchored"]
    parsed_ok = anchored_ok - stages["parse"]
    filtered_ok = parsed_ok - stages["filter"]
    projected = sum(1 for r in kept for side in ("A", "B") if "text" in ((r.get("projections") or {}).get(side) or {}))
    histograms: dict[str, dict[str, int]] = {}
    for r in kept:
        for side in ("scores_a", "scores_b"):
            for aspect, score in ((r.get("judgement") or {}).get(side) or {}).items():
                key = "N/A" if score is None else f"{score:g}"
                histograms.setdefault(aspect, Counter())[key] += 1  # type: ignore[index]
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


def card_markdown(card: dict[str, Any]) -> str:
    lines = ["# PARROT data card", "",
             f"- teacher: `{card['teacher']}`; settings: `{json.dumps(card['settings'])}`",
             f"- pairs read: {card['pairs']} ({card['bad_rows']} bad rows skipped, see validation.json)",
             f"- kept: {card['kept']} of {card['finished']} (survival {card['survival_rate']})",
             f"- rows: {card['pairwise_rows']} pairwise, {card['pointwise_rows']} pointwise",
             f"- teacher calls: {card['teacher_calls']}", "", "## Survival by phase", "",
             "| phase | pairs left |", "|---|---|"]
    lines += [f"| {phase} | {n} |" for phase, n in card["survival_by_phase"].items()]
    lines += ["", "## Rejections by reason", "", "| reason | pairs |", "|---|---|"]
    lines += [f"| {reason} | {n} |" for reason, n in card["rejected_by_reason"].items()] or ["| (none) | 0 |"]
    lines += ["", "## Per-aspect scores of kept pairwise rationales", "", "![score histograms](score_histograms.png)", ""]
    for aspect, counts in card["score_histograms"].items():
        lines.append(f"- {aspect}: " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    return "\n".join(lines) + "\n"


def plot_histograms(records: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kept = [r for r in records if r["status"] == "kept"]
    aspects = sorted({a for r in kept for s in ("scores_a", "scores_b") for a in ((r.get("judgement") or {}).get(s) or {})})
    fig, axes = plt.subplots(1, max(1, len(aspects)), figsize=(4 * max(1, len(aspects)), 3), squeeze=False)
    for ax, aspect in zip(axes[0], aspects or ["(no kept pairs)"], strict=False):
        values = [v for r in kept for s in ("scores_a", "scores_b") if (v := ((r.get("judgement") or {}).get(s) or {}).get(aspect)) is not None]
        ax.hist(values, bins=[1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5], color="#4a7bd0", edgecolor="white", align="left")
        ax.set_title(aspect, fontsize=10)
        ax.set_xlabel("score")
    axes[0][0].set_ylabel("rationale sides")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
