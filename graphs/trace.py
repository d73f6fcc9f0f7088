"""Run traces: one JSON line per node execution (round, candidate, prompt, image ref, scores, abstentions, timings,
token usage when the backend reports it), appended safely from concurrent threads."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import TextIO

from rationalrewards.plumbing.telemetry import annotate


class Tracer:
    def __init__(self, path: str | Path, run_id: str = "") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.run_id = run_id
        self._lock = threading.Lock()
        self._file: TextIO | None = None  # opened on the first event and kept: an open per event showed in profiles

    def emit(self, node: str, **fields: object) -> None:
        annotate(**fields)  # the same fields on the current OpenTelemetry span (the node's), when tracing is on
        event = {"ts": round(time.time(), 3), "run_id": self.run_id, "node": node, **fields}
        line = json.dumps(event, ensure_ascii=False, default=str)
        with self._lock:
            if self._file is None or self._file.closed:
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(line + "\n")
            self._file.flush()  # each line reaches the OS at once, so a killed process loses no finished event

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> Tracer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tracer_or_file(tracer: Tracer | None, trace: str | Path | None) -> Tracer | None:
    """A run context's tracer from its `tracer=` (a Tracer) or `trace=` (a file to append to) argument."""
    if trace is None:
        return tracer
    if tracer is not None:
        raise ValueError("give trace= (a file) or tracer= (a Tracer), not both")
    return Tracer(trace)


def read_trace(path: str | Path) -> list[dict[str, object]]:
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
