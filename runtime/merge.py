"""`rationalrewards merge RUN_DIR... --out DIR`: join the run directories of one job's shards (`--shard i/N` workers,
Slurm array tasks) into one run directory with one summary and one report.

The shards must be one job: the same kind (refine or parrot) and the same settings apart from `shard`. Their results
are concatenated (an item finished in two shards must agree, or the merge stops), their failures kept for items that
no shard finished, and the summary and report written as a single run would write them. Images stay where the shards
wrote them (results refer to them by path); the merged report embeds what it shows, as every report does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rationalrewards.plumbing.files import atomic_write_jsonl
from rationalrewards.runtime.batch import FAILURES, RESULTS
from rationalrewards.runtime.rundir import MANIFEST, RunDirectory, read_jsonl

KEYS = {"gcr": "sample_id", "parrot": "pair_id"}  # the job names run.json records (refine runs are "gcr")


class MergeError(ValueError):
    """Run directories that cannot be merged (says which and why)."""


def _manifest(path: Path) -> dict[str, Any]:
    try:
        return json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise MergeError(f"{path} is not a run directory (no readable {MANIFEST}: {e})") from e


def merge_runs(run_dirs: Sequence[str | Path], out: str | Path) -> dict[str, object]:
    paths = [Path(p) for p in run_dirs]
    if len(paths) < 2:
        raise MergeError("give at least two run directories to merge")
    if len({p.resolve() for p in paths}) != len(paths):
        raise MergeError("the same run directory is given twice")
    manifests = [_manifest(p) for p in paths]
    jobs = {m.get("job") for m in manifests}
    if len(jobs) != 1 or next(iter(jobs)) not in KEYS:
        raise MergeError(f"only runs of one job (refine or parrot) merge; these are {sorted(map(str, jobs))}")
    job = str(next(iter(jobs)))
    common = [{k: v for k, v in (m.get("settings") or {}).items() if k != "shard"} for m in manifests]
    for path, settings in zip(paths[1:], common[1:], strict=True):
        if settings != common[0]:
            changed = sorted(k for k in settings.keys() | common[0].keys() if settings.get(k) != common[0].get(k))
            raise MergeError(f"{path} was run with other settings than {paths[0]} ({', '.join(changed)}): not one job")
    shards = [str((m.get("settings") or {}).get("shard")) for m in manifests]
    if len(set(shards)) != len(shards) or len({s.partition("/")[2] for s in shards}) != 1 or "None" in shards:
        raise MergeError(f"these are not distinct shards i/N of one N (shards: {', '.join(shards)})")
    key = KEYS[job]
    results: dict[str, dict[str, object]] = {}
    for path in paths:
        for record in read_jsonl(path / RESULTS):
            item = str(record[key])
            if item in results and results[item] != record:
                raise MergeError(f"{key} {item} finished differently in two shards: the shards overlap")
            results[item] = record
    failures = {str(f[key]): f for path in paths for f in read_jsonl(path / FAILURES) if str(f.get(key)) not in results}
    with RunDirectory(out).open(job, common[0] | {"merged_from": [str(p.resolve()) for p in paths]}) as run_dir:
        atomic_write_jsonl(run_dir.file(RESULTS), list(results.values()))
        atomic_write_jsonl(run_dir.file(FAILURES), list(failures.values()))
        summary = _summarize(job, run_dir, paths)
    return {
        **summary,
        "merged": len(paths),
        "shards": sorted(shards),
        "finished": len(results),
        "failed": len(failures),
    }


def _summarize(job: str, run_dir: RunDirectory, paths: list[Path]) -> Mapping[str, object]:
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
            "run_dir": str(run_dir.path),
        }
        run_dir.write_json("summary.json", summary)
        write_report(run_dir.path)
        return summary
    from rationalrewards.runtime.parrot_runner import export_merged

    return export_merged(
        run_dir, [json.loads((p / "card.json").read_text()) for p in paths if (p / "card.json").exists()]
    )
