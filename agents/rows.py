"""Reading tabular data files the way every loader here does: JSONL, Parquet, or a saved `datasets` directory, with
line numbers kept for error reports, and paths inside them resolved against the file's own folder."""

from __future__ import annotations

import json
from pathlib import Path


def read_rows(path: Path) -> list[tuple[int, dict[str, object]]]:
    """(line or row number, row) for every row of a JSONL file, a Parquet file or a saved `datasets` directory. A line
    that cannot be read becomes an error row (`{"__error__": reason}`) so the caller can report it by line number."""
    if path.is_dir():
        try:
            import datasets
        except ImportError as e:  # the `train` extra
            raise ValueError(
                "reading a datasets directory needs the `datasets` package (pip install 'rationalrewards[train]')"
            ) from e
        try:
            return [(n, dict(row)) for n, row in enumerate(datasets.load_from_disk(str(path)), start=1)]
        except (OSError, ValueError, FileNotFoundError) as e:
            raise ValueError(f"{path} is not a readable saved `datasets` directory ({type(e).__name__}: {e})") from e
    if path.suffix == ".parquet":
        import pyarrow
        import pyarrow.parquet as pq

        try:
            return list(enumerate(pq.read_table(path).to_pylist(), start=1))
        except (OSError, pyarrow.ArrowException) as e:
            raise ValueError(f"{path} is not a readable Parquet file ({e})") from e
    with path.open("rb") as f:
        head = f.read(8192)
    if b"\x00" in head:
        raise ValueError(
            f"{path} is a binary file, not JSONL (one JSON object per line), Parquet or a datasets directory"
        )
    rows: list[tuple[int, dict[str, object]]] = []
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                rows.append((number, {"__error__": "not UTF-8 text"}))
                continue
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                rows.append((number, {"__error__": f"not JSON ({e.msg})"}))
                continue
            rows.append((number, row if isinstance(row, dict) else {"__error__": "not a JSON object"}))
    return rows


def resolve_path(value: object, base: Path) -> Path:
    """A path written in a data file: absolute, `file://...`, or relative to the file's folder (`base`)."""
    text = str(value)
    if text.startswith("file://"):
        text = text[len("file://") :]
    path = Path(text)
    return path if path.is_absolute() else base / path
