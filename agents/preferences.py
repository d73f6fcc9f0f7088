"""Preference data for PARROT: read pairs from JSONL, Parquet or a saved Hugging Face `datasets` directory, validate
every row up front (before any teacher call), and optionally augment with swapped A/B order.

Fields: `prompt`, `image_a`, `image_b` (paths or file:// URIs, relative paths resolved against the file's folder),
optional `source_image` (editing), `label` in {A, B, tie} (also left/right, 1/2, model_1/model_2, "Image A", ...),
optional `pair_id`. Bad rows are skipped and listed with the reason, never silently dropped.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rationalrewards.rewardmodel.errors import InvalidImageError
from rationalrewards.rewardmodel.images import image_ref_from_path
from rationalrewards.rewardmodel.schemas import ImageRef, Task, Winner

_LABELS: dict[str, Winner] = {
    "a": "A",
    "b": "B",
    "tie": "tie",
    "left": "A",
    "right": "B",
    "1": "A",
    "2": "B",
    "0": "A",
    "model_1": "A",
    "model_2": "B",
    "model1": "A",
    "model2": "B",
    "image a": "A",
    "image b": "B",
    "image_a": "A",
    "image_b": "B",
    "first": "A",
    "second": "B",
    "draw": "tie",
    "equal": "tie",
    "same": "tie",
    "both": "tie",
    "neither": "tie",
    "it's a tie": "tie",
    "a>b": "A",
    "b>a": "B",
    "a=b": "tie",
}


def normalise_label(value: Any) -> Winner:
    """A, B or tie from the common spellings; raises ValueError naming the value otherwise."""
    text = re.sub(r"\s+", " ", str(value).strip().lower())
    if text in _LABELS:
        return _LABELS[text]
    raise ValueError(
        f"unknown label {value!r} (use A, B or tie; left/right, 1/2, model_1/model_2 and 'Image A' also work)"
    )


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

    def to_json(self) -> dict[str, Any]:
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
    bad_rows: list[dict[str, Any]] = field(default_factory=list)  # {"row": n, "pair_id": ..., "reason": ...}

    @property
    def summary(self) -> str:
        lines = [f"{len(self.pairs)} valid pairs, {len(self.bad_rows)} bad rows skipped"]
        lines += [f"  row {b['row']} ({b.get('pair_id') or 'no id'}): {b['reason']}" for b in self.bad_rows]
        return "\n".join(lines)


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if path.is_dir():
        try:
            import datasets
        except ImportError as e:  # the `train` extra
            raise ValueError(
                "reading a datasets directory needs the `datasets` package (pip install 'rationalrewards[train]')"
            ) from e
        return [dict(row) for row in datasets.load_from_disk(str(path))]
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    rows = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                rows.append({"__error__": f"line {number} is not JSON ({e.msg})"})
    return rows


def _resolve(value: Any, base: Path) -> Path:
    text = str(value)
    if text.startswith("file://"):
        text = text[len("file://") :]
    path = Path(text)
    return path if path.is_absolute() else base / path


def _pair_id(row: dict[str, Any], index: int) -> str:
    if row.get("pair_id") not in (None, ""):
        return str(row["pair_id"])
    digest = hashlib.sha256(
        json.dumps([row.get("prompt"), str(row.get("image_a")), str(row.get("image_b"))]).encode()
    ).hexdigest()[:10]
    return f"pair-{index:06d}-{digest}"


def _pair_from_row(row: dict[str, Any], pair_id: str, base: Path) -> PreferencePair:
    """One valid pair from one row, or a `ValueError` saying what is wrong with it."""
    if "__error__" in row:
        raise ValueError(row["__error__"])
    prompt = str(row.get("prompt") or "").strip()
    if not prompt:
        raise ValueError("missing prompt")
    label = normalise_label(row.get("label", ""))
    refs: dict[str, ImageRef] = {}
    for key in ("image_a", "image_b", "source_image"):
        if row.get(key) in (None, ""):
            if key == "source_image":
                continue
            raise ValueError(f"missing {key}")
        try:
            refs[key] = image_ref_from_path(_resolve(row[key], base))
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


def load_preferences(path: str | Path, *, swap_augment: bool = False) -> ValidationReport:
    """Read and validate every row; images are opened (and hashed) here, before any teacher is called."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"preference file not found: {path}")
    base = path if path.is_dir() else path.parent
    report = ValidationReport()
    seen: set[str] = set()
    for index, row in enumerate(_read_rows(path)):
        pair_id = _pair_id(row, index)
        try:
            if pair_id in seen:
                raise ValueError(f"duplicate pair_id {pair_id!r}")
            pair = _pair_from_row(row, pair_id, base)
        except ValueError as e:
            report.bad_rows.append(
                {"row": index + 1, "pair_id": pair_id if "__error__" not in row else None, "reason": str(e)}
            )
            continue
        seen.add(pair_id)
        report.pairs.append(pair)
        if swap_augment:
            report.pairs.append(swapped(pair))
    return report
