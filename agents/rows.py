"""Reading data files the way their owners publish them, one row at a time: JSONL, a JSON array, Parquet, Arrow (IPC
file or stream, as `datasets` writes), CSV/TSV, a saved `datasets` directory, or a folder of Parquet/Arrow shards (a
hub snapshot). Every command that reads data (pairs for `parrot` and `eval`, suites, prompts, distillation rows)
reads through `iter_rows`.

- Streamed: columnar files are read in record batches of `BATCH_ROWS` rows, text files line by line, so a 959k-row
  preference set is never in memory at once. (A JSON array is one value: it is parsed whole; its size is checked.)
- Row numbers are kept (1-based; the line number for JSONL) so an error names the row.
- Only pyarrow is needed for the columnar formats, `datasets` is not: a saved directory's Arrow files are read
  directly, and an `Image()` column arrives as its stored `{"bytes", "path"}` struct, never decoded here.
- A `datasets.Dataset` (or any iterable of mappings) from Python reads the same way.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

Row = dict[str, object]
NumberedRow = tuple[int, Row]
ERROR_KEY = "__error__"  # a row that could not be read: its reason, reported by row number by the caller
BATCH_ROWS = 64  # image datasets hold the images inline: 64 rows of 1 MB images is 64 MB in flight, at most
MAX_JSON_ARRAY_BYTES = 512 << 20
COLUMNAR_SUFFIXES = (".parquet", ".arrow", ".feather")
TEXT_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv")


def iter_rows(
    source: str | Path | Iterable[Mapping[str, object]], *, columns: Sequence[str] | None = None
) -> Iterator[NumberedRow]:
    """(row number, row) for every row of `source`. `columns`: read only these (columnar formats skip the others on
    disk). A row that cannot be read comes as `{ERROR_KEY: reason}`, for the caller to report by number."""
    if not isinstance(source, str | Path):
        yield from _iter_objects(source)
        return
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"data file not found: {path}")
    if path.is_dir():
        yield from _iter_files(data_files(path), columns)
        return
    yield from _iter_file(path, columns)


def read_rows(source: str | Path, *, columns: Sequence[str] | None = None) -> list[NumberedRow]:
    """`iter_rows` as a list, for files known to be small (suites of prompts, fixtures)."""
    return list(iter_rows(source, columns=columns))


def count_rows(source: str | Path) -> int | None:
    """The number of rows where the file says so cheaply (Parquet and Arrow metadata), for progress bars; else None."""
    path = Path(source)
    if not path.is_dir() and not path.is_file():
        return None  # a pipe: counting would consume it
    files = data_files(path) if path.is_dir() else [path]
    total = 0
    for file in files:
        counted = _columnar_count(file) if file.suffix.lower() in COLUMNAR_SUFFIXES else _line_count(file)
        if counted is None:
            return None
        total += counted
    return total


def data_files(directory: Path) -> list[Path]:
    """The data files of a folder: a saved `datasets` directory's Arrow files in its own order (`state.json`), else
    every Parquet/Arrow/JSONL file below it, sorted (a hub snapshot's `data/train-00000-of-00003.parquet`, ...)."""
    state = directory / "state.json"
    if state.is_file():
        try:
            listed = [directory / f["filename"] for f in json.loads(state.read_text())["_data_files"]]
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(
                f"{directory} looks like a saved datasets directory but its state.json is unreadable"
            ) from e
        return listed
    if (directory / "dataset_dict.json").is_file():
        raise ValueError(
            f"{directory} is a saved DatasetDict (several splits): give one split's folder, e.g. {directory}/test"
        )
    found = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix in (*COLUMNAR_SUFFIXES, ".jsonl"))
    if not found:
        raise ValueError(
            f"{directory} holds no data files (Parquet, Arrow or JSONL) and is no saved datasets directory"
        )
    return found


def _iter_files(files: list[Path], columns: Sequence[str] | None) -> Iterator[NumberedRow]:
    offset = 0
    for file in files:
        number = 0
        for number, row in _iter_file(file, columns):
            yield offset + number, row
        offset += number


def _iter_file(path: Path, columns: Sequence[str] | None) -> Iterator[NumberedRow]:
    suffix = path.suffix.lower()
    if suffix in COLUMNAR_SUFFIXES:
        yield from _iter_columnar(path, columns)
    elif suffix in (".csv", ".tsv"):
        yield from _iter_csv(path, "\t" if suffix == ".tsv" else ",")
    elif suffix == ".json" and _json_document(path):
        yield from _iter_json_document(path)
    else:
        yield from _iter_jsonl(path)


def _json_document(path: Path) -> bool:
    """Whether a `.json` file is one JSON document (an array, or an object holding the rows' list, pretty-printed or
    on one line) rather than JSON Lines (one object per line)."""
    with path.open("rb") as f:
        first = f.readline()
        second = f.readline()
    if first.lstrip().startswith(b"["):
        return True
    try:
        head = json.loads(first)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return True  # the first line is no whole value: a document over several lines
    if second.strip():
        return False
    return isinstance(head, dict) and any(
        isinstance(v, list) and v and all(isinstance(x, dict) for x in v) for v in head.values()
    )


def _batches(path: Path, columns: Sequence[str] | None) -> Iterator[Any]:
    """Record batches of a Parquet file or an Arrow IPC file/stream, `BATCH_ROWS` rows each."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if path.suffix.lower() == ".parquet":
            # pre_buffer=False: with pre-buffering on, pyarrow keeps every row group read so far (memory grew by
            # the file's size; measured by benchmarks/eval_memory.py).
            parquet = pq.ParquetFile(path, pre_buffer=False)
            wanted = [c for c in columns if c in parquet.schema_arrow.names] if columns else None
            yield from parquet.iter_batches(batch_size=BATCH_ROWS, columns=wanted)
            return
        source = pa.memory_map(str(path))
        try:
            stream = pa.ipc.open_stream(source)  # what datasets' save_to_disk writes
        except pa.ArrowInvalid:
            source.seek(0)
            file = pa.ipc.open_file(source)
            for i in range(file.num_record_batches):
                yield from _sliced(file.get_batch(i), columns)
            return
        for batch in stream:
            yield from _sliced(batch, columns)
    except (OSError, pa.ArrowException) as e:
        raise ValueError(f"{path} is not a readable {path.suffix.lstrip('.')} file ({e})") from e


def _sliced(batch: Any, columns: Sequence[str] | None) -> Iterator[Any]:
    if columns:
        batch = batch.select([c for c in columns if c in batch.schema.names])
    for start in range(0, batch.num_rows, BATCH_ROWS):
        yield batch.slice(start, BATCH_ROWS)


def _iter_columnar(path: Path, columns: Sequence[str] | None) -> Iterator[NumberedRow]:
    number = 0
    for batch in _batches(path, columns):
        for row in batch.to_pylist():
            number += 1
            yield number, row


def _columnar_count(path: Path) -> int | None:
    suffix = path.suffix.lower()
    if suffix not in COLUMNAR_SUFFIXES:
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if suffix == ".parquet":
            return int(pq.ParquetFile(path).metadata.num_rows)
        try:
            return int(pa.ipc.open_file(pa.memory_map(str(path))).count_rows())
        except pa.ArrowInvalid:
            return sum(b.num_rows for b in pa.ipc.open_stream(pa.memory_map(str(path))))
    except (OSError, pa.ArrowException):
        return None


def _line_count(path: Path) -> int | None:
    """Lines of a JSONL file (a fast pass over its bytes); None for other text formats, whose rows are not lines."""
    if path.suffix.lower() != ".jsonl" and not (path.suffix.lower() == ".json" and not _json_document(path)):
        return None
    count = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            count += chunk.count(b"\n")
    return count


def _iter_jsonl(path: Path) -> Iterator[NumberedRow]:
    with path.open("rb") as f:
        if b"\x00" in f.peek(8192)[:8192]:  # peek: a pipe (`--suite <(...)`) cannot seek back
            raise ValueError(
                f"{path} is a binary file, not JSONL (one JSON object per line), Parquet, Arrow, CSV or a datasets "
                "directory"
            )
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield number, {ERROR_KEY: "not UTF-8 text"}
                continue
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                yield number, {ERROR_KEY: f"not JSON ({e.msg})"}
                continue
            yield number, row if isinstance(row, dict) else {ERROR_KEY: "not a JSON object"}


def _iter_json_document(path: Path) -> Iterator[NumberedRow]:
    """The rows of a JSON array, or of the one list in a JSON object (`{"pairs": [...]}`, as MMRB2 publishes)."""
    size = path.stat().st_size
    if size > MAX_JSON_ARRAY_BYTES:
        raise ValueError(
            f"{path} is a {size >> 20} MB JSON document, read whole; convert it to JSONL (one object per line) to "
            "stream it"
        )
    try:
        document = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not readable JSON ({e})") from e
    if isinstance(document, dict):
        lists = [v for v in document.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise ValueError(f"{path} is a JSON object with {len(lists)} lists; its rows must be one list")
        document = lists[0]
    for number, item in enumerate(document, start=1):
        yield number, item if isinstance(item, dict) else {ERROR_KEY: "not a JSON object"}


def _iter_csv(path: Path, delimiter: str) -> Iterator[NumberedRow]:
    with path.open("r", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        try:
            for row in reader:
                # The line a row ends on: a quoted cell may span lines.
                yield reader.line_num, {k: v for k, v in row.items() if k is not None}
        except (csv.Error, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: line {reader.line_num}: not readable CSV ({e})") from e


def _iter_objects(rows: Iterable[Mapping[str, object]]) -> Iterator[NumberedRow]:
    for number, row in enumerate(rows, start=1):
        yield number, dict(row) if isinstance(row, Mapping) else {ERROR_KEY: f"a {type(row).__name__}, not a mapping"}


def resolve_path(value: object, base: Path) -> Path:
    """A path written in a data file: absolute, `file://...`, or relative to the file's folder (`base`)."""
    text = str(value)
    if text.startswith("file://"):
        text = text[len("file://") :]
    path = Path(text)
    return path if path.is_absolute() else base / path


def base_folder(source: str | Path) -> Path:
    """The folder relative paths inside `source` are read against: the folder itself, or the file's."""
    path = Path(source)
    return path if path.is_dir() else path.parent


__all__ = [
    "BATCH_ROWS",
    "ERROR_KEY",
    "NumberedRow",
    "Row",
    "base_folder",
    "count_rows",
    "data_files",
    "iter_rows",
    "read_rows",
    "resolve_path",
]
