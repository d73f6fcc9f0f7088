"""Atomic file writes: a reader never sees half a file, and concurrent writers of the same content never collide
(each writes its own temporary name, then renames over the target)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; outputs are meant to be shared and served
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_jsonl(path: str | Path, rows: Iterable[dict[str, object]]) -> Path:
    """One JSON object per line, written atomically."""
    return atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every complete JSON object line of a file (none if it does not exist). A line cut short by a crash, or any
    line that is not a JSON object, is skipped: the item it recorded runs again."""
    return list(iter_jsonl(path))


def iter_jsonl(path: str | Path) -> Iterator[dict[str, object]]:
    """Like `read_jsonl`, one record at a time (constant memory for large runs)."""
    path = Path(path)
    if not path.exists():
        return
    with path.open("rb") as f:
        for raw in f:
            try:
                row = json.loads(raw)
            except ValueError:  # JSONDecodeError and UnicodeDecodeError: a line cut short by a crash
                continue
            if isinstance(row, dict):
                yield row
