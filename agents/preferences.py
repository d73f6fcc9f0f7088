"""Preference data for PARROT and `eval`: pairs read from any data file `agents/rows.py` reads (JSONL, JSON, Parquet,
Arrow, CSV, a saved `datasets` directory), with any column names (`agents/columns.py`), images in any form a dataset
stores them (`agents/cells.py`) and labels in any spelling public sets use (`agents/labels.py`). Every row is
validated up front (before any teacher call), optionally augmented with swapped A/B order. Bad rows are skipped and
listed with their row number and reason, never silently dropped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rationalrewards.agents.cells import image_from_cell, images_from_cell, spill
from rationalrewards.agents.columns import ColumnMap
from rationalrewards.agents.labels import LabelMap, normalise_label, parse_label_map
from rationalrewards.agents.rows import ERROR_KEY, base_folder, iter_rows
from rationalrewards.rewardmodel.errors import InvalidImageError
from rationalrewards.rewardmodel.images import as_image_ref
from rationalrewards.rewardmodel.schemas import ImageRef, Task, Winner


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

    @classmethod
    def of(
        cls,
        prompt: str,
        image_a: object,
        image_b: object,
        label: object,
        *,
        source_image: object = None,
        pair_id: str | None = None,
    ) -> PreferencePair:
        """A pair from what a user holds: images in any form `as_image_ref` reads (paths, data URLs, bytes, PIL
        images, datasets' `{"bytes", "path"}` records) and the label in any accepted spelling ("A", "image_b", "tie",
        "model_a", ...). Without `pair_id`, the id is made from the prompt and both images' contents."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("a preference pair needs a non-empty prompt")
        a, b = as_image_ref(image_a, "image_a"), as_image_ref(image_b, "image_b")
        source = as_image_ref(source_image, "source_image") if source_image is not None else None
        if pair_id is None:
            material = "\n".join([prompt, a.sha256, b.sha256, source.sha256 if source else ""])
            pair_id = hashlib.sha256(material.encode()).hexdigest()[:16]
        return cls(pair_id, prompt, a, b, normalise_label(label), source)

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


def _id_material(value: object) -> str:
    """What a cell adds to a row's id: its text (paths, prompts; at most 4,096 characters), or for image bytes their
    length and ends. The row number makes the id unique; this only ties it to the row's content, and an image's repr
    (megabytes of escaped bytes) would cost more than the rest of reading the row."""
    if isinstance(value, Mapping) and isinstance(value.get("bytes"), bytes | bytearray):
        value = value["bytes"]
    if isinstance(value, bytes | bytearray):
        return f"bytes:{len(value)}:{bytes(value[:64]).hex()}{bytes(value[-64:]).hex()}"
    return str(value)[:4096]


def pair_id_of(row: Mapping[str, object], columns: ColumnMap, number: int) -> str:
    given = row.get(columns["pair_id"])
    if given not in (None, ""):
        return str(given)
    material = [_id_material(row.get(columns[f])) for f in ("prompt", "image_a", "image_b", "images")]
    digest = hashlib.sha256(json.dumps(material).encode()).hexdigest()[:10]
    return f"pair-{number:06d}-{digest}"


@dataclass(frozen=True)
class PairReader:
    """How the rows of one data file become pairs: its columns, what bare-number labels mean, where inline images are
    kept (`image_dir`: written once as content-addressed files; None keeps them inline as data URLs)."""

    base: Path
    columns: ColumnMap = field(default_factory=ColumnMap)
    label_map: LabelMap = field(default_factory=dict)
    image_dir: Path | None = None

    def image(self, value: object, what: str) -> ImageRef:
        ref = image_from_cell(value, self.base, what)
        return spill(ref, self.image_dir) if self.image_dir is not None else ref

    def pair(self, row: Mapping[str, object], pair_id: str) -> PreferencePair:
        """One valid pair from one row, or a `ValueError` saying what is wrong with it."""
        if ERROR_KEY in row:
            raise ValueError(row[ERROR_KEY])
        c = self.columns
        prompt = row.get(c["prompt"])
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError(f"missing prompt (column {c['prompt']!r})")
        from_list = c.uses_list(row)
        if from_list:
            images = images_from_cell(row.get(c["images"]), self.base, c["images"])
            if len(images) != 2:
                raise ValueError(f"column {c['images']!r} holds {len(images)} images; a pair needs 2")
            a, b = (spill(i, self.image_dir) if self.image_dir else i for i in images)
        else:
            a, b = self.image(row.get(c["image_a"]), c["image_a"]), self.image(row.get(c["image_b"]), c["image_b"])
        label = normalise_label(
            row.get(c["label"], ""), self.label_map, image_columns=(c["image_a"], c["image_b"]), from_list=from_list
        )
        source_cell = row.get(c["source_image"])
        sources = images_from_cell(source_cell, self.base, c["source_image"]) if source_cell not in (None, "") else []
        if len(sources) > 1:
            raise ValueError(f"{len(sources)} source images: edits from several sources are not read yet")
        source: ImageRef | None = sources[0] if sources else None
        if source is not None and self.image_dir is not None:
            source = spill(source, self.image_dir)
        return PreferencePair(
            pair_id=pair_id, prompt=prompt.strip(), image_a=a, image_b=b, label=label, source_image=source
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


def iter_preferences(
    source: str | Path | Iterable[Mapping[str, object]],
    *,
    columns: ColumnMap | None = None,
    label_map: LabelMap | str | None = None,
    image_dir: Path | None = None,
    base: Path | None = None,
) -> Iterator[tuple[int, str, PreferencePair | ValueError]]:
    """(row number, pair id, the pair or why the row is bad), one row at a time: nothing but the current batch of rows
    is in memory."""
    columns = columns or ColumnMap()
    reader = PairReader(
        base=base or (base_folder(source) if isinstance(source, str | Path) else Path.cwd()),
        columns=columns,
        label_map=parse_label_map(label_map) if isinstance(label_map, str) or label_map is None else label_map,
        image_dir=image_dir,
    )
    for number, row in iter_rows(source, columns=columns.wanted()):
        pair_id = pair_id_of(row, columns, number) if ERROR_KEY not in row else ""
        try:
            yield number, pair_id, reader.pair(row, pair_id)
        except (ValueError, InvalidImageError, OSError) as e:
            yield number, pair_id, e if isinstance(e, ValueError) else ValueError(str(e))


def load_preferences(
    source: str | Path | Iterable[Mapping[str, object]],
    *,
    swap_augment: bool = False,
    label_map: LabelMap | str | None = None,
    columns: ColumnMap | None = None,
    image_dir: Path | None = None,
) -> ValidationReport:
    """Read and validate every row; images are opened (and hashed) here, before any teacher is called. Inline images
    are written under `image_dir` when one is given."""
    if isinstance(source, str | Path) and not Path(source).exists():
        raise FileNotFoundError(f"preference file not found: {source}")
    report = ValidationReport()
    seen: set[str] = set()
    for number, pair_id, outcome in iter_preferences(source, columns=columns, label_map=label_map, image_dir=image_dir):
        if isinstance(outcome, PreferencePair) and pair_id in seen:
            outcome = ValueError(f"duplicate pair_id {pair_id!r}")
        if isinstance(outcome, ValueError):
            report.bad_rows.append({"row": number, "pair_id": pair_id or None, "reason": str(outcome)})
            continue
        seen.add(pair_id)
        report.pairs.append(outcome)
        if swap_augment:
            report.pairs.append(swapped(outcome))
    return report
