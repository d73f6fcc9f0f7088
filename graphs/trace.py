"""Run traces: one JSON line per node execution (round, candidate, prompt, image ref, scores, abstentions, timings,
token usage when the backend reports it), appended safely from concurrent threads."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any


class Tracer:
    def __init__(self, path: str | Path, run_id: str = "") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.run_id = run_id
        self._lock = threading.Lock()

    def emit(self, node: str, **fields: Any) -> None:
        event = {"ts": round(time.time(), 3), "run_id": self.run_id, "node": node, **fields}
        line = json.dumps(event, ensure_ascii=False, default=str)
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")


def read_trace(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash mid-write: the rest of the trace still reads
    return events
