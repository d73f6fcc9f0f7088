"""Audit a PARROT run in the sketch world against ground truth: how many rationales state facts the scene graphs
contradict (hallucinations), and how many contradict their own label, before and after filtering."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rationalrewards.agents.preferences import PreferencePair
from rationalrewards.plumbing.files import iter_jsonl
from rationalrewards.rewardmodel.errors import CritiqueParseError, InvalidImageError
from rationalrewards.rewardmodel.parsing import parse_pairwise
from rationalrewards.sketch.oracle import false_claims
from rationalrewards.sketch.scene import load_scene


def _share(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def _finished_pairs(out: Path) -> list[dict[str, Any]]:
    """The run's finished-pair records (`results.jsonl`; the first complete line per pair)."""
    records: dict[str, dict[str, Any]] = {}
    for record in iter_jsonl(out / "results.jsonl"):
        records.setdefault(str(record.get("pair_id", "")), record)
    return [records[k] for k in sorted(records)]


def audit_parrot(out: str | Path) -> dict[str, object]:
    anchored = hallucinated = contradicting = 0
    kept = kept_hallucinated = kept_agreeing = 0
    for record in _finished_pairs(Path(out)):
        pair = PreferencePair.from_json(record["pair"])
        try:
            scenes = {"Image A": load_scene(pair.image_a), "Image B": load_scene(pair.image_b)}
        except InvalidImageError:
            continue  # not a sketch-world pair: nothing to audit against
        attempts = list(record.get("history", []))
        if record["status"] == "kept":
            attempts.append({"rationale": record["rationale"], "kept": True})
        for attempt in attempts:
            rationale = attempt.get("rationale")
            if not rationale:
                continue
            anchored += 1
            lies = bool(false_claims(rationale, scenes))
            hallucinated += lies
            try:
                agrees = parse_pairwise(rationale, pair.task).preferred == pair.label
            except CritiqueParseError:
                agrees = False
            contradicting += not agrees
            if attempt.get("kept"):
                kept += 1
                kept_hallucinated += lies
                kept_agreeing += agrees
    return {
        "anchored_rationales": anchored,
        "contradict_label_before": _share(contradicting, anchored),
        "hallucinated_before": _share(hallucinated, anchored),
        "exported_rationales": kept,
        "scores_agree_with_label_after": _share(kept_agreeing, kept),
        "hallucinated_after": _share(kept_hallucinated, kept),
        "hallucinations_removed": _share(hallucinated - kept_hallucinated, hallucinated),
    }
