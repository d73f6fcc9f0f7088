"""Run directories: what every batch job (GCR, PARROT, evaluation, RL) keeps on disk, and the rules that keep it sane.

- **One writer.** `RunDirectory.open()` takes an exclusive lock (`.lock`, filelock's `flock`-based lock) and writes
  who holds it to `.lock.owner`; a second process on the same directory is refused with a message naming the holder
  (pid, host, command with credentials masked, start time). The lock dies with its process, so a killed run never
  leaves a stale lock behind; `is_locked(path)` tells another process (`merge`) whether a run is still being written.
- **Same inputs or refuse.** `run.json` records the format version, the job, and every setting that determines the
  output (backends and their settings, the input's content hash, seeds, counts). Resuming with any difference is
  refused with the list of differences; `force_new=True` (`--force-new`) moves the old run into `archive/<time>/`
  and starts afresh. Nothing is deleted.
- **Nothing half-written.** JSON files are written atomically; JSONL records are appended as whole lines and read
  back tolerantly (a line cut by a crash is skipped, and its item simply runs again).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from rationalrewards.plumbing.files import atomic_write_text, iter_jsonl, read_jsonl
from rationalrewards.plumbing.redact import redact

__all__ = ["RunDirectory", "RunDirectoryError", "differences", "is_locked", "iter_jsonl", "read_jsonl"]

RUN_FORMAT_VERSION = 2
MANIFEST = "run.json"
_LOCK = ".lock"
_OWNER = ".lock.owner"  # beside the lock: filelock truncates the lock file itself on every try


def is_locked(path: str | Path) -> bool:
    """Whether a process holds the run directory at `path` now (without taking it)."""
    lock_path = Path(path) / _LOCK
    if not lock_path.exists():
        return False
    lock = FileLock(lock_path, thread_local=False, is_singleton=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


class RunDirectoryError(ValueError):
    """The run directory is busy, from another format version, or holds a run with other inputs."""


def differences(old: object, new: Any, where: str = "") -> list[str]:
    """Human-readable differences between two JSON values ("critic: 'sketch' -> 'http://...'")."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{where}.{key}" if where else str(key)
            if key not in old:
                found.append(f"{path}: (absent) -> {new[key]!r}")
            elif key not in new:
                found.append(f"{path}: {old[key]!r} -> (absent)")
            else:
                found += differences(old[key], new[key], path)
        return found
    return [] if old == new else [f"{where or 'value'}: {old!r} -> {new!r}"]


class RunDirectory:
    """A run directory held by this process. Use as a context manager, or `open()` / `close()`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock: FileLock | None = None
        self._append_lock = threading.Lock()
        self._force_new = False

    # -- ownership --
    def _acquire(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise RunDirectoryError(f"{self.path} exists and is not a directory; choose another --out")
        self.path.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.path / _LOCK, thread_local=False, is_singleton=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            owner = self.path / _OWNER
            holder = owner.read_text().strip() if owner.is_file() else ""
            raise RunDirectoryError(
                f"{self.path} is in use by {holder or 'another process'}; wait for it to finish or choose another --out"
            ) from None
        command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:300]
        atomic_write_text(
            self.path / _OWNER,
            f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')} "
            f"({redact(command)})\n",
        )
        self._lock = lock

    def open(
        self,
        job: str,
        settings: dict[str, object],
        *,
        info: dict[str, object] | None = None,
        force_new: bool = False,
        fresh: bool = False,
        owned: tuple[str, ...] = (),
    ) -> RunDirectory:
        """Lock the directory and check (or write) its manifest. `settings` must be JSON: every value that determines
        the output. `info` is recorded but not compared (sizes, timestamps). `force_new`: a run with other settings is
        moved into `archive/`; `fresh`: any earlier run is (a job that starts afresh unless told to resume), and so is
        a folder holding only files this job writes (`owned`: an earlier version's run without a manifest)."""
        self._acquire()
        self._force_new = force_new
        try:
            entries = {p.name for p in self.path.iterdir()} - {_LOCK, _OWNER, "archive"}
            if fresh and ((self.path / MANIFEST).exists() or (entries and entries <= set(owned))):
                self._archive()
            self._check_manifest(job, json.loads(json.dumps(settings, default=str)), info or {}, force_new)
        except BaseException:
            self.close()
            raise
        return self

    def _check_manifest(self, job: str, settings: dict[str, object], info: dict[str, object], force_new: bool) -> None:
        path = self.path / MANIFEST
        manifest = {"version": RUN_FORMAT_VERSION, "job": job, "settings": settings}
        if path.exists():
            try:
                existing = json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                raise RunDirectoryError(f"{path} is not a readable run manifest ({e}); use another --out") from e
            if not isinstance(existing, dict):
                raise RunDirectoryError(f"{path} is not a run manifest; use another --out")
            old = {k: existing.get(k) for k in manifest}
            found = differences(old, manifest)
            if not found:
                return
            if not force_new:
                raise RunDirectoryError(
                    f"{self.path} holds a run with other inputs; resuming would mix two runs. Differences:\n  "
                    + "\n  ".join(found)
                    + "\nUse another --out, or pass --force-new to move the old run into archive/ and start afresh."
                )
            self._archive()
        elif any(p.name not in (_LOCK, _OWNER, "archive") for p in self.path.iterdir()):
            raise RunDirectoryError(f"{self.path} is not empty and holds no {MANIFEST}: choose an empty or new --out")
        atomic_write_text(
            path,
            json.dumps(
                manifest | {"info": info | {"created": time.strftime("%Y-%m-%dT%H:%M:%S"), "run_id": uuid.uuid4().hex}},
                indent=1,
                default=str,
            ),
        )

    def bind_inputs(self, sha256: str, count: int) -> None:
        """Check the run's input items (their content hash) against the manifest, or record them on the first run.
        Separate from `open()` because some inputs are made inside the locked directory (the sketch world's pairs)."""
        manifest = self.manifest()
        recorded = manifest.get("inputs")
        if recorded is not None and recorded.get("sha256") != sha256 and self._force_new:
            self._archive()
            atomic_write_text(self.path / MANIFEST, json.dumps(manifest, indent=1, default=str))
            recorded = None
        elif recorded is not None and recorded.get("sha256") != sha256:
            raise RunDirectoryError(
                f"{self.path} was run on other inputs ({recorded.get('count')} items, sha256 {str(recorded.get('sha256'))[:12]}...; "
                f"now {count} items, sha256 {sha256[:12]}...). Resuming would mix two runs: use another --out, or pass "
                "--force-new to move the old run into archive/ and start afresh."
            )
        if recorded is None:
            atomic_write_text(
                self.path / MANIFEST,
                json.dumps(manifest | {"inputs": {"sha256": sha256, "count": count}}, indent=1, default=str),
            )

    def _archive(self) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path / "archive" / stamp
        n = 1
        while target.exists():  # two runs archived within one second
            target, n = self.path / "archive" / f"{stamp}-{n}", n + 1
        target.mkdir(parents=True, exist_ok=False)
        for entry in self.path.iterdir():
            if entry.name not in (_LOCK, _OWNER, "archive"):
                entry.rename(target / entry.name)

    def close(self) -> None:
        if self._lock is not None:
            (self.path / _OWNER).unlink(missing_ok=True)
            self._lock.release()
            self._lock = None

    def __enter__(self) -> RunDirectory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- files --
    @property
    def run_id(self) -> str:
        """This run's identity (a random hex id recorded when it was created; older run directories: derived from
        their path). It namespaces the run's threads in a checkpoint database shared with other runs."""
        info = self.manifest().get("info") or {}
        return str(info.get("run_id") or hashlib.sha256(str(self.path.resolve()).encode()).hexdigest()[:32])

    def file(self, name: str) -> Path:
        return self.path / name

    def manifest(self) -> dict[str, Any]:
        path = self.path / MANIFEST
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    def append(self, name: str, record: dict[str, Any]) -> None:
        """Append one record as one line (flushed): the line is either whole on disk or skipped on reading."""
        line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        with self._append_lock, (self.path / name).open("ab") as f:
            f.write(line)
            f.flush()

    def write_json(self, name: str, value: object) -> Path:
        return atomic_write_text(self.path / name, json.dumps(value, indent=1, ensure_ascii=False, default=str))

    def records(self, name: str, key: str) -> dict[str, dict[str, Any]]:
        """The records of a JSONL file by `key`, the first complete one per key kept (a rerun item may append twice)."""
        kept: dict[str, dict[str, Any]] = {}
        for row in iter_jsonl(self.path / name):
            if key in row:
                kept.setdefault(str(row[key]), row)
        return kept
