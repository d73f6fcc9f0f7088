"""Prompt suites: the input of a GCR run. Any data file (JSONL, Parquet, CSV, ...), one row per prompt, validated up front (before any generation).

Fields: `prompt` (required, non-empty text); optional `id`, `seed`; editing: `source_image` (a path, resolved against
the suite file's folder, like preference files) or `source_prompt` + `source_seed` (the source is generated first);
ground truth in the GenEval metadata schema: `tag`, `include`, `exclude`, `text`. A row whose ground truth is
malformed is refused with its line number rather than run without it. Other fields are kept as they are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rationalrewards.agents.geneval import SceneSpec


class SuiteRow(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    prompt: str = Field(min_length=1)
    id: str | None = None
    seed: int = Field(default=0, ge=0)
    tag: str | None = None
    include: list[dict[str, object]] | None = None
    exclude: list[dict[str, object]] | None = None
    text: list[str] | None = None
    source_image: str | None = None
    source_prompt: str | None = None
    source_seed: int = Field(default=0, ge=0)

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("prompt is blank")
        return value

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _ground_truth_is_whole(self) -> SuiteRow:
        if self.include is not None:
            if self.tag is None:
                raise ValueError("'include' needs a 'tag' (GenEval schema)")
            try:
                spec = SceneSpec.from_geneval(self.geneval())
            except ValidationError as e:
                where = ".".join(str(part) for part in e.errors()[0]["loc"])
                raise ValueError(
                    f"malformed ground truth in 'include'/'exclude' ({where}: {e.errors()[0]['msg']})"
                ) from e
            for obj in spec.include:
                if obj.count < 1:
                    raise ValueError(f"count {obj.count} of '{obj.cls}' must be at least 1")
                if obj.position is not None and not 0 <= obj.position[1] < len(spec.include):
                    raise ValueError(
                        f"position of '{obj.cls}' points at object {obj.position[1]}, which does not exist"
                    )
        elif self.tag is not None and self.tag != "edit":
            raise ValueError(f"tag {self.tag!r} without 'include': the ground truth is incomplete")
        if self.source_image is not None and self.source_prompt is not None:
            raise ValueError("give source_image or source_prompt, not both")
        return self

    @property
    def is_edit(self) -> bool:
        return self.source_image is not None or self.source_prompt is not None

    def geneval(self) -> dict[str, object]:
        """The row's GenEval metadata (empty when it has none)."""
        if self.include is None:
            return {}
        return {"tag": self.tag, "include": self.include, "exclude": self.exclude or [], "text": self.text or []}

    def sample_id(self, index: int) -> str:
        """The row's id, else a stable one from its position and content."""
        if self.id:
            return self.id
        digest = hashlib.sha256(
            json.dumps([self.prompt, self.source_prompt, self.source_image, self.seed]).encode()
        ).hexdigest()[:8]
        return f"s{index:05d}-{digest}"


def _row_error(path: Path, number: int, error: Exception) -> ValueError:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "row"
        message = f"{where}: {first['msg']}"
    else:
        message = str(error)
    return ValueError(f"{path}:{number}: {message}")


class Suite(Sequence[SuiteRow]):
    """Validated rows, held compactly: each row as its JSON text without default values, rebuilt on access (without
    validating again: it was validated once, on the way in). A `SuiteRow` object with its dicts and lists takes about
    1.2 KB; its text about 200 bytes, so a 100,000-prompt suite costs about 20 MB of a run's memory, not 120 MB."""

    def __init__(self, rows: Iterable[SuiteRow] = ()) -> None:
        self._lines: list[bytes] = []
        for row in rows:
            self.append(row)

    def append(self, row: SuiteRow) -> None:
        self._lines.append(row.model_dump_json(exclude_defaults=True).encode())

    @classmethod
    def _of_lines(cls, lines: list[bytes]) -> Suite:
        suite = cls()
        suite._lines = lines
        return suite

    def __len__(self) -> int:
        return len(self._lines)

    @overload
    def __getitem__(self, index: int) -> SuiteRow: ...

    @overload
    def __getitem__(self, index: slice) -> Suite: ...

    def __getitem__(self, index: int | slice) -> SuiteRow | Suite:
        if isinstance(index, slice):
            return Suite._of_lines(self._lines[index])
        return SuiteRow.model_construct(**json.loads(self._lines[index]))

    def __iter__(self) -> Iterator[SuiteRow]:
        for line in self._lines:
            yield SuiteRow.model_construct(**json.loads(line))

    def __repr__(self) -> str:
        return f"Suite({len(self)} rows)"


def read_suite(path: str | Path) -> Suite:
    """Every row of a suite, validated: JSONL, JSON, Parquet, Arrow, CSV or a saved datasets directory
    (`agents/rows.py`). `source_image` paths are made absolute against the file's folder; a source image stored inline
    (bytes, a datasets struct, a data URL) is written once to the content-addressed image cache and referred to by
    path. Rows are read one at a time into a compact `Suite`, so reading never holds the file as objects."""
    from rationalrewards.agents.cells import image_from_cell, spill
    from rationalrewards.agents.function_generator import default_image_dir
    from rationalrewards.agents.rows import ERROR_KEY, base_folder, iter_rows

    path = Path(path)
    if not path.exists():
        raise ValueError(f"suite file not found: {path}")
    base = base_folder(path)
    rows = Suite()
    for number, data in iter_rows(path):
        if ERROR_KEY in data:
            raise ValueError(f"{path}:{number}: {data[ERROR_KEY]}")
        source = data.get("source_image")
        if isinstance(source, str) and source and not source.startswith("data:"):
            resolved = Path(source.removeprefix("file://"))
            data["source_image"] = str(resolved if resolved.is_absolute() else (base / resolved).resolve())
        elif source not in (None, ""):
            try:
                data["source_image"] = spill(image_from_cell(source, base, "source_image"), default_image_dir()).uri
            except ValueError as e:
                raise _row_error(path, number, e) from e
        try:
            row = SuiteRow.model_validate(data)
        except (ValidationError, ValueError) as e:
            raise _row_error(path, number, e) from e
        rows.append(row)
    if not rows:
        raise ValueError(f"{path} holds no prompts")
    return rows


def suite_rows(rows: Iterable[SuiteRow | dict[str, object]]) -> Suite:
    """Rows given in code (dicts or rows), validated the same way as a file's, as a compact `Suite`."""
    if isinstance(rows, Suite):
        return rows

    def validated() -> Iterator[SuiteRow]:
        for number, row in enumerate(rows, start=1):
            try:
                yield row if isinstance(row, SuiteRow) else SuiteRow.model_validate(row)
            except (ValidationError, ValueError) as e:
                raise _row_error(Path("<rows>"), number, e) from e

    return Suite(validated())


def write_jsonl(rows: Iterable[BaseModel | dict[str, object]], path: str | Path) -> Path:
    from rationalrewards.plumbing.files import atomic_write_jsonl

    return atomic_write_jsonl(path, (r.model_dump(exclude_none=True) if isinstance(r, BaseModel) else r for r in rows))
