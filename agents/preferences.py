"""Preference data for PARROT: read pairs from JSONL, Parquet or a saved Hugging Face `datasets` directory, validate
every row up front (before any teacher call), and optionally augment with swapped A/B order.

Fields: `prompt`, `image_a`, `image_b` (paths or file:// URIs, relative paths resolved against the file's folder),
optional `source_image` (editing), `label` in {A, B, tie} (also left/right, model_1/model_2, "Image A", ...; bare
numbers only with a `label_map` such as {"0": "A", "1": "B"}),
optional `pair_id`. Bad rows are skipped and listed with the reason, never silently dropped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rationalrewards.agents.rows import read_rows, resolve_path
from rationalrewards.rewardmodel.errors import InvalidImageError
from rationalrewards.rewardmodel.images import image_ref_from_path
from rationalrewards.rewardmodel.schemas import ImageRef, Task, Winner

_LABELS: dict[str, Winner] = {
    "a": "A", "b": "B", "tie": "tie", "left": "A", "right": "B", "model_1": "A", "model_2": "B", "model1": "A",
    "model2": "B", "image a": "A", "image b": "B", "image_a": "A", "image_b": "B", "first": "A", "second": "B",
    "draw": "tie", "equal": "tie", "same": "tie", "both": "tie", "neither": "tie", "it's a tie": "tie", "a>b": "A",
    "b>a": "B", "a=b": "tie",
}  # fmt: skip
LabelMap = dict[str, Winner]


def parse_label_map(text: str | None) -> LabelMap:
    """`--label-map 0=A,1=B` (or `1=A,2=B`, `yes=A,no=B`, ...) as a mapping; empty when none is given."""
    if not text:
        return {}
    mapping: LabelMap = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        target = _LABELS.get(value.strip().lower()) if sep else None
        if not key.strip() or target is None:
            raise ValueError(f"--label-map takes items like 0=A,1=B (values A, B or tie), got {item.strip()!r}")
        mapping[key.strip().lower()] = target
    return mapping


def normalise_label(value: object, label_map: LabelMap | None = None) -> Winner:
    """A, B or tie from the common spellings; raises ValueError naming the value and every accepted spelling.

    Bare numbers are refused unless `label_map` says what they mean: in one dataset 0 means the first image, in
    another 1 does, and guessing would silently flip half of a dataset's labels."""
    text = " ".join(str(value).strip().lower().split())
    if label_map and text in label_map:
        return label_map[text]
    if text in _LABELS:
        return _LABELS[text]
    if text.lstrip("+-").replace(".", "", 1).isdigit():
        raise ValueError(
            f"label {value!r} is a bare number, which datasets use both ways; say what the numbers mean with "
            "--label-map (e.g. 0=A,1=B or 1=A,2=B)"
        )
    spellings = ", ".join(sorted(_LABELS))
    raise ValueError(f"unknown label {value!r}; accepted spellings: {spellings} (numbers with --label-map)")


@dataclass(frozen=True)
class PreferencePair:
    pair_id: str
    prompt: str
    image_a: ImageRef
    image_b: ImageRef
    label: Winner
    source_image: ImageRef | None = None
    swapped: bool = False

    @property
    def task(self) -> Task:
        return Task.edit if self.source_image is not None else Task.t2i

    def to_json(self) -> dict[str, object]:
        return {
            "pair_id": self.pair_id,
            "prompt": self.prompt,
            "image_a": self.image_a.model_dump(mode="json"),
            "image_b": self.image_b.model_dump(mode="json"),
            "label": self.label,
            "swapped": self.swapped,
            "source_image": self.source_image.model_dump(mode="json") if self.source_image else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PreferencePair:
        return cls(
            pair_id=data["pair_id"],
            prompt=data["prompt"],
            image_a=ImageRef.model_validate(data["image_a"]),
            image_b=ImageRef.model_validate(data["image_b"]),
            label=data["label"],
            swapped=data.get("swapped", False),
            source_image=ImageRef.model_validate(data["source_image"]) if data.get("source_image") else None,
        )


@dataclass
class ValidationReport:
    pairs: list[PreferencePair] = field(default_factory=list)
    bad_rows: list[dict[str, object]] = field(
        default_factory=list
    )  # {"row": line (JSONL) or row number, "pair_id": ..., "reason": ...}

    @property
    def summary(self) -> str:
        lines = [f"{len(self.pairs)} valid pairs, {len(self.bad_rows)} bad rows skipped"]
        lines += [f"  row {b['row']} ({b.get('pair_id') or 'no id'}): {b['reason']}" for b in self.bad_rows]
        return "\n".join(lines)


def _pair_id(row: dict[str, object], index: int) -> str:
    if row.get("pair_id") not in (None, ""):
        return str(row["pair_id"])
    digest = hashlib.sha256(
        json.dumps([row.get("prompt"), str(row.get("image_a")), str(row.get("image_b"))]).encode()
    ).hexdigest()[:10]
    return f"pair-{index:06d}-{digest}"


def _pair_from_row(row: dict[str, object], pair_id: str, base: Path, label_map: LabelMap) -> PreferencePair:
    """One valid pair from one row, or a `ValueError` saying what is wrong with it."""
    if "__error__" in row:
        raise ValueError(row["__error__"])
    prompt = str(row.get("prompt") or "").strip()
    if not prompt:
        raise ValueError("missing prompt")
    label = normalise_label(row.get("label", ""), label_map)
    refs: dict[str, ImageRef] = {}
    for key in ("image_a", "image_b", "source_image"):
        if row.get(key) in (None, ""):
            if key == "source_image":
                continue
            raise ValueError(f"missing {key}")
        try:
            refs[key] = image_ref_from_path(resolve_path(row[key], base))
        except InvalidImageError as e:
            raise ValueError(f"{key}: {e}") from e
    return PreferencePair(
        pair_id=pair_id,
        prompt=prompt,
        image_a=refs["image_a"],
        image_b=refs["image_b"],
        label=label,
        source_image=refs.get("source_image"),
    )


def swapped(pair: PreferencePair) -> PreferencePair:
    """The same pair with A and B exchanged (and the label with them)."""
    label: Winner = "B" if pair.label == "A" else "A" if pair.label == "B" else "tie"
    return PreferencePair(
        pair_id=f"{pair.pair_id}~swap",
        prompt=pair.prompt,
        image_a=pair.image_b,
        image_b=pair.image_a,
        label=label,
        source_image=pair.source_image,
        swapped=True,
    )


def load_preferences(
    path: str | Path, *, swap_augment: bool = False, label_map: LabelMap | None = None
) -> ValidationReport:
    """Read and validate every row; images are opened (and hashed) here, before any teacher is called."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"preference file not found: {path}")
    base = path if path.is_dir() else path.parent
    report = ValidationReport()
    seen: set[str] = set()
    for index, (number, row) in enumerate(read_rows(path)):
        pair_id = _pair_id(row, index)
        try:
            if pair_id in seen:
                raise ValueError(f"duplicate pair_id {pair_id!r}")
            pair = _pair_from_row(row, pair_id, base, label_map or {})
        except ValueError as e:
            report.bad_rows.append(
                {"row": number, "pair_id": pair_id if "__error__" not in row else None, "reason": str(e)}
            )
            continue
        seen.add(pair_id)
        report.pairs.append(pair)
        if swap_augment:
            report.pairs.append(swapped(pair))
    return report
