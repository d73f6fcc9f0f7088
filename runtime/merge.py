"""`rationalrewards merge RUN_DIR... --out DIR`: join the run directories of one job's shards (`--shard i/N` workers,
Slurm array tasks) into one run directory with one summary and one report.

What a merge requires (each refused by name, before anything is written):
- one job: the same kind (refine or parrot) and the same settings apart from `shard`;
- every shard `0..N-1` of one `N`, each complete (its finished and failed items cover its input count) and not being
  written now (no process holds its lock). `--partial` merges what is there instead, and the summary lists the
  shards and the number of items missing;
- every record well formed (a JSON object with its item id; an item finished in two shards must agree).
The merged directory is built beside `--out` and moved into place in one rename, so it is whole or absent. Images the
results refer to are copied into it (content-addressed, with their sidecars), so the merged report and export work
after the shards are deleted.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rationalrewards.plumbing.files import atomic_write_jsonl
from rationalrewards.rewardmodel.images import content_path
from rationalrewards.runtime.batch import FAILURES, RESULTS
from rationalrewards.runtime.rundir import MANIFEST, RunDirectory, is_locked, read_jsonl

KEYS = {"gcr": "sample_id", "parrot": "pair_id"}  # the job names run.json records (refine runs are "gcr")


class MergeError(ValueError):
    """Run directories that cannot be merged (says which and why)."""


@dataclass
class Shard:
    path: Path
    index: int
    of: int
    inputs: int | None  # the shard's input count, as its manifest records it
    settings: dict[str, object]
    results: dict[str, dict[str, object]] = field(default_factory=dict)
    failures: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def missing(self) -> int:
        done = len(self.results) + len(set(self.failures) - set(self.results))
        return max(0, (self.inputs or 0) - done)


def _manifest(path: Path) -> dict[str, object]:
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise MergeError(f"{path} is not a run directory (no readable {MANIFEST}: {e})") from e
    if not isinstance(manifest, dict):
        raise MergeError(f"{path / MANIFEST} is not a JSON object")
    return manifest


def _shard(path: Path) -> Shard:
    manifest = _manifest(path)
    settings = manifest.get("settings")
    if not isinstance(settings, dict):
        raise MergeError(f"{path / MANIFEST} has no settings")
    index, _, of = str(settings.get("shard")).partition("/")
    if not (index.isdigit() and of.isdigit() and int(index) < int(of)):
        raise MergeError(f"{path} is not a shard i/N of a job (its shard is {settings.get('shard')!r})")
    inputs = manifest.get("inputs")
    count = inputs.get("count") if isinstance(inputs, dict) else None
    return Shard(path, int(index), int(of), count if isinstance(count, int) else None, settings)


def _records(shard: Shard, name: str, key: str) -> dict[str, dict[str, object]]:
    """A shard's records by item id, each checked to be an object with its id (a crafted file is named, line by line)."""
    records: dict[str, dict[str, object]] = {}
    for number, record in enumerate(read_jsonl(shard.path / name), 1):
        item = record.get(key)
        if not isinstance(item, str | int) or isinstance(item, bool) or str(item) == "":
            raise MergeError(f"{shard.path / name}: record {number} has no {key}")
        if name == RESULTS and not isinstance(record.get("stop_reason" if key == "sample_id" else "status"), str):
            raise MergeError(f"{shard.path / name}: record {number} ({key} {item}) is not a finished item's record")
        records[str(item)] = record
    return records


def _read(paths: list[Path], partial: bool) -> tuple[str, list[Shard], list[str]]:
    """The job, its shards with their records, and what is missing (empty unless `partial`)."""
    shards = [_shard(p) for p in paths]
    jobs = {str(_manifest(s.path).get("job")) for s in shards}
    if len(jobs) != 1 or next(iter(jobs)) not in KEYS:
        raise MergeError(f"only runs of one job (refine or parrot) merge; these are {sorted(jobs)}")
    job = next(iter(jobs))
    common = {k: v for k, v in shards[0].settings.items() if k != "shard"}
    for shard in shards[1:]:
        other = {k: v for k, v in shard.settings.items() if k != "shard"}
        if other != common:
            changed = sorted(k for k in other.keys() | common.keys() if other.get(k) != common.get(k))
            raise MergeError(f"{shard.path} was run with other settings than {shards[0].path} ({', '.join(changed)})")
    counts = {s.of for s in shards}
    if len(counts) != 1:
        raise MergeError(
            f"these shards split the job in different ways ({', '.join(f'of {n}' for n in sorted(counts))})"
        )
    total = counts.pop()
    seen = [s.index for s in shards]
    if len(set(seen)) != len(seen):
        raise MergeError(f"shard {next(i for i in seen if seen.count(i) > 1)}/{total} is given twice")
    missing: list[str] = [f"shard {i}/{total} (not given)" for i in range(total) if i not in seen]
    key = KEYS[job]
    for shard in shards:
        name = f"shard {shard.index}/{total} ({shard.path})"
        if is_locked(shard.path):
            missing.append(f"{name} is still being written")
        shard.results, shard.failures = _records(shard, RESULTS, key), _records(shard, FAILURES, key)
        if shard.inputs is None:
            missing.append(f"{name} never started")
        elif shard.missing:
            missing.append(f"{name} lacks {shard.missing} of {shard.inputs} items")
    if missing and not partial:
        raise MergeError("not every shard is complete: " + "; ".join(missing) + " (finish them, or pass --partial)")
    return job, shards, missing


def merge_runs(
    run_dirs: Sequence[str | Path], out: str | Path, *, partial: bool = False, force_new: bool = False
) -> dict[str, object]:
    paths = [Path(p) for p in run_dirs]
    out = Path(out)
    if len({p.resolve() for p in paths}) != len(paths):
        raise MergeError("the same run directory is given twice")
    if not paths:
        raise MergeError("give the shards' run directories")
    job, shards, missing = _read(paths, partial)
    key = KEYS[job]
    results: dict[str, dict[str, object]] = {}
    for shard in shards:
        for item, record in shard.results.items():
            if item in results and results[item] != record:
                raise MergeError(f"{key} {item} finished differently in two shards: the shards overlap")
            results[item] = record
    failures = {i: f for s in shards for i, f in s.failures.items() if i not in results}
    if out.exists() and any(out.iterdir()) and not force_new:
        raise MergeError(f"{out} exists and is not empty: choose another --out, or pass --force-new to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.merging-", dir=out.parent))
    try:
        summary = _write(job, staging, out, shards, results, failures)
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    total = shards[0].of
    return {
        **summary,
        "run_dir": str(out),
        "merged": len(shards),
        "shards": sorted(f"{s.index}/{total}" for s in shards),
        "finished": len(results),
        "failed": len(failures),
        "partial": bool(missing),
        "missing": missing,
    }


def _write(
    job: str,
    staging: Path,
    out: Path,
    shards: list[Shard],
    results: dict[str, dict[str, object]],
    failures: dict[str, dict[str, object]],
) -> Mapping[str, object]:
    settings = {k: v for k, v in shards[0].settings.items() if k != "shard"}
    merged_from = {"merged_from": [str(s.path.resolve()) for s in shards]}
    with RunDirectory(staging).open(job, settings | merged_from) as run_dir:
        images = staging / "images"
        copied = [_own_record(record, images, final=out / "images") for record in results.values()]
        atomic_write_jsonl(run_dir.file(RESULTS), copied)
        atomic_write_jsonl(run_dir.file(FAILURES), list(failures.values()))
        return _summarize(job, run_dir, [s.path for s in shards], out)


def _own_record(record: dict[str, object], images: Path, *, final: Path) -> dict[str, object]:
    return {k: _own_images(v, images, final=final) for k, v in record.items()}


def _own_images(value: object, images: Path, *, final: Path) -> object:
    """`value` with every image ref it holds copied under `images` (content-addressed, with a sidecar beside) and
    pointing at where that folder will be once the merge is moved into place (`final`)."""
    if isinstance(value, list):
        return [_own_images(v, images, final=final) for v in value]
    if not isinstance(value, dict):
        return value
    if value.get("kind") == "image_ref" and isinstance(value.get("uri"), str) and isinstance(value.get("sha256"), str):
        uri, digest = str(value["uri"]), str(value["sha256"])
        source = Path(uri.removeprefix("file://"))
        if uri.startswith("data:") or not source.is_file():
            return value  # inline, or already gone: nothing to copy
        target = content_path(images, digest, source.suffix or ".png")
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            sidecar = source.with_name(source.stem + ".scene.json")
            if sidecar.is_file():
                shutil.copyfile(sidecar, target.with_name(target.stem + ".scene.json"))
        return value | {"uri": str((final / target.relative_to(images)).resolve())}
    return {k: _own_images(v, images, final=final) for k, v in value.items()}


def _replace(staging: Path, out: Path) -> None:
    """Move the merged directory into place in one rename (an old `out` is first moved aside, never deleted)."""
    if out.exists():
        aside = out.with_name(f"{out.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(out, aside)
    os.replace(staging, out)


def _summarize(job: str, run_dir: RunDirectory, paths: list[Path], out: Path) -> Mapping[str, object]:
    if job == "gcr":
        from rationalrewards.runtime.gcr_runner import summarize_results
        from rationalrewards.runtime.report import write_report
        from rationalrewards.runtime.rundir import iter_jsonl

        summary = summarize_results(iter_jsonl(run_dir.file(RESULTS)))
        shard_summaries = [json.loads((p / "summary.json").read_text()) for p in paths if (p / "summary.json").exists()]
        summary |= {
            "n": sum(s.get("n", 0) for s in shard_summaries),
            "seconds": max((s.get("seconds", 0) for s in shard_summaries), default=0),
            "preset": (shard_summaries[0].get("preset") or {}) if shard_summaries else {},
            "critic_prompts": shard_summaries[0].get("critic_prompts") if shard_summaries else None,
            "run_dir": str(out),
        }
        run_dir.write_json("summary.json", summary)
        write_report(run_dir.path, lives_at=out)
        return summary
    from rationalrewards.runtime.parrot_runner import export_merged

    cards = [json.loads((p / "card.json").read_text()) for p in paths if (p / "card.json").exists()]
    return {**export_merged(run_dir, cards), "out": str(out)}
