"""`rationalrewards eval`: a critic's pairwise preference accuracy on a benchmark or preference set as published.

- The data streams (`agents/benchmarks.py`): pairs are read, judged and written a window at a time, so memory stays
  flat however many rows the file has.
- Every judgement is appended to `judgements.jsonl` as it lands (one line per pair: the label, both predictions, the
  summed scores, the category and group). `--resume` continues a killed evaluation from that file: nothing is judged
  twice, and the figures are computed from the file, so a resumed run reports what one run would have.
- Accounting, both in every report, named: ours (summed scores over aspects both sides scored decide; abstentions and
  predicted ties counted apart; decisive-pair accuracy with a 95% Wilson interval) and the release's (a missing,
  unreadable or N/A score counts 2.5; requests with no text skipped; label ties must be predicted as ties). `--mode`
  picks the aspects summed (the release's `all`, `text`, `visual`). Groups (pairs cut from one ranking) also get
  exact-ranking accuracy: the share of groups whose every pair is right.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from rationalrewards.agents.benchmarks import EvalPair
from rationalrewards.plumbing.files import iter_jsonl
from rationalrewards.rewardmodel.backends.base import RewardModel
from rationalrewards.rewardmodel.release_rules import ReleaseMode, release_mode_aspects, release_totals, release_winner
from rationalrewards.rewardmodel.schemas import Abstention, CompareRequest, PairwiseJudgement, Winner, decide_pairwise

JUDGEMENTS = "judgements.jsonl"
SCORE_BINS = [x / 2 for x in range(0, 33)]  # summed scores of up to 4 aspects of 1-4, in halves


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """The 95% Wilson score interval of a proportion (sound near 0 and 1, where the normal one is not)."""
    if n == 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return round(centre - half, 4), round(centre + half, 4)


def _ours(result: PairwiseJudgement, mode: ReleaseMode, tolerance: float) -> tuple[Winner, float | None, float | None]:
    keys = [a.value for a in release_mode_aspects(mode, result.task)]
    scores_a = {k: v for k, v in result.scores_a.items() if k in keys}
    scores_b = {k: v for k, v in result.scores_b.items() if k in keys}
    both = [k for k in keys if scores_a.get(k) is not None and scores_b.get(k) is not None]
    total_a = sum(scores_a[k] or 0.0 for k in both) if both else None
    total_b = sum(scores_b[k] or 0.0 for k in both) if both else None
    return decide_pairwise(scores_a, scores_b, tolerance), total_a, total_b


def judgement_record(
    item: EvalPair, result: PairwiseJudgement | Abstention, mode: ReleaseMode, tolerance: float
) -> dict[str, object]:
    """One line of `judgements.jsonl`: what the figures are computed from."""
    record: dict[str, object] = {
        "pair_id": item.pair.pair_id,
        "label": item.pair.label,
        "category": item.category,
        "group": item.group,
    }
    totals = release_totals(result, mode)
    record["release"] = None if totals is None else release_winner(*totals, tolerance)
    if isinstance(result, Abstention):
        return record | {"predicted": None, "abstention": f"{result.reason}: {result.detail}"[:300]}
    predicted, total_a, total_b = _ours(result, mode, tolerance)
    return record | {
        "predicted": predicted,
        "totals": [total_a, total_b],
        "scores_a": result.scores_a,
        "scores_b": result.scores_b,
        "samples": result.samples,
    }


@dataclass
class Tally:
    """Counts for one slice of the data (all pairs, or one category)."""

    n: int = 0
    judged: int = 0
    correct: int = 0
    abstentions: int = 0
    predicted_ties: int = 0
    label_ties: int = 0
    decisive: int = 0
    decisive_correct: int = 0
    release_evaluated: int = 0
    release_correct: int = 0

    def add(self, record: dict[str, Any]) -> None:
        label, predicted, release = record["label"], record.get("predicted"), record.get("release")
        self.n += 1
        self.label_ties += label == "tie"
        if release is not None:
            self.release_evaluated += 1
            self.release_correct += release == label
        if predicted is None:
            self.abstentions += 1
            return
        self.judged += 1
        self.correct += predicted == label
        self.predicted_ties += predicted == "tie"
        if label != "tie":
            self.decisive += 1
            self.decisive_correct += predicted == label

    def figures(self) -> dict[str, object]:
        return {
            "n": self.n,
            "judged": self.judged,
            "abstentions": self.abstentions,
            "predicted_ties": self.predicted_ties,
            "label_ties": self.label_ties,
            "accuracy": _ratio(self.correct, self.judged),
            "accuracy_decisive": _ratio(self.decisive_correct, self.decisive),
            "accuracy_decisive_ci95": wilson_interval(self.decisive_correct, self.decisive),
            "release_accuracy": _ratio(self.release_correct, self.release_evaluated),
            "release_evaluated": self.release_evaluated,
        }


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


@dataclass
class EvalSummary:
    """Everything the report shows, accumulated one record at a time (memory: counters, not records)."""

    overall: Tally = field(default_factory=Tally)
    categories: dict[str, Tally] = field(default_factory=dict)
    groups: dict[str, bool] = field(default_factory=dict)  # group -> every pair right so far
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)  # (label, predicted or "abstain")
    preferred: Counter[float] = field(default_factory=Counter)  # summed score of the labelled-better image
    rejected: Counter[float] = field(default_factory=Counter)

    def add(self, record: dict[str, Any]) -> None:
        self.overall.add(record)
        if record.get("category"):
            self.categories.setdefault(str(record["category"]), Tally()).add(record)
        if record.get("group"):
            group = str(record["group"])
            self.groups[group] = self.groups.get(group, True) and record.get("predicted") == record["label"]
        label, predicted = str(record["label"]), record.get("predicted")
        self.confusion[(label, str(predicted) if predicted is not None else "abstain")] += 1
        totals = record.get("totals")
        if label != "tie" and isinstance(totals, list) and None not in totals:
            better, worse = (totals[0], totals[1]) if label == "A" else (totals[1], totals[0])
            self.preferred[round(float(better) * 2) / 2] += 1
            self.rejected[round(float(worse) * 2) / 2] += 1

    def figures(self) -> dict[str, object]:
        out = self.overall.figures()
        if self.categories:
            out["categories"] = {name: tally.figures() for name, tally in sorted(self.categories.items())}
        if self.groups:
            exact = sum(self.groups.values())
            out["groups"] = len(self.groups)
            out["exact_ranking_accuracy"] = _ratio(exact, len(self.groups))
        out["confusion"] = {f"{label}->{predicted}": n for (label, predicted), n in sorted(self.confusion.items())}
        return out


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a judgements file; a line cut by a kill (the last one) is passed over."""
    return (record for record in iter_jsonl(path) if "pair_id" in record)


def summarise(path: Path) -> EvalSummary:
    summary = EvalSummary()
    for record in read_records(path):
        summary.add(record)
    return summary


async def judge_stream(
    critic: RewardModel,
    items: Iterator[EvalPair],
    out: Path,
    *,
    mode: ReleaseMode,
    tolerance: float,
    concurrency: int,
    on_done: Any = None,
) -> int:
    """Judge every item, `concurrency` requests in flight in batches of up to 8, appending each record to `out` as
    its batch lands. Returns how many were judged."""
    batch_size = max(1, min(8, concurrency // 8 or 1))
    in_flight = max(1, math.ceil(2 * concurrency / batch_size))
    judged = 0
    with out.open("ab") as sink:
        if sink.tell() and not _ends_with_newline(out):
            sink.write(b"\n")  # a line cut by a kill stays a line of its own (and is passed over)

        async def judge(batch: list[EvalPair]) -> None:
            nonlocal judged
            results = await critic.compare([CompareRequest.like(item.pair) for item in batch])
            for item, result in zip(batch, results, strict=True):
                line = json.dumps(judgement_record(item, result, mode, tolerance), ensure_ascii=False)
                sink.write(line.encode() + b"\n")
            sink.flush()
            judged += len(batch)
            if on_done is not None:
                on_done(len(batch))

        pending: set[asyncio.Task[None]] = set()
        try:
            while True:
                batch = list(islice(items, batch_size))
                if batch:
                    pending.add(asyncio.create_task(judge(batch)))
                if pending and (len(pending) >= in_flight or not batch):
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result()  # a failure ends the run; what landed is on disk for --resume
                if not batch and not pending:
                    return judged
        finally:
            for task in pending:
                task.cancel()


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(-1, 2)
        return f.read(1) == b"\n"


__all__ = [
    "JUDGEMENTS",
    "EvalSummary",
    "Tally",
    "judge_stream",
    "judgement_record",
    "read_records",
    "summarise",
    "wilson_interval",
]
