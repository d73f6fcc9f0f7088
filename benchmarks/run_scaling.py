"""Run-directory scaling of GCR (issue 15): `paper` and `deep` over 1,000 and 10,000 sketch prompts.

Each (preset, size) runs in its own process (so peak RSS is that run's) with sketch backends at concurrency 16. Every
row gets its own seed, so no two items share a generation. Prints per run: time per prompt, checkpoint database bytes
per finished prompt, peak RSS, the largest report page, and the most files in one folder; then the ratios the
targets read (time per prompt at 10,000 over 1,000; RSS growth per prompt, and how much of it is the suite itself,
held as `rationalrewards refine --suite` holds it, measured before the run starts).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/run_scaling.py [--sizes 1000 10000] [--presets paper deep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(preset: str, n: int, out: Path) -> dict[str, float]:
    from rationalrewards.agents.refiner import CriticRefiner
    from rationalrewards.agents.suite import read_suite
    from rationalrewards.graphs.gcr_config import GCRConfig
    from rationalrewards.runtime.gcr_runner import GCRRunner
    from rationalrewards.sketch.generator import SketchGenerator
    from rationalrewards.sketch.grader import SketchGrader
    from rationalrewards.sketch.oracle import SketchOracle

    # As `rationalrewards refine --suite FILE` reads and holds a suite (the file is written by the parent process).
    rows = read_suite(out.parent / f"suite-{n}.jsonl")
    suite_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the suite alone, before the run
    runner = GCRRunner(
        out,
        generator=SketchGenerator(out / "images"),
        critic=SketchOracle(),
        refiner=CriticRefiner(),
        config=GCRConfig.preset(preset),
        grader=SketchGrader(),
        concurrency=16,
        progress=False,
    )
    started = time.perf_counter()
    summary = asyncio.run(runner.run(rows))
    seconds = time.perf_counter() - started
    database = sum(p.stat().st_size for p in out.glob("checkpoints.sqlite*"))
    pages = [p.stat().st_size for p in out.rglob("*.html")]
    per_folder = max(len(os.listdir(folder)) for folder, _, _ in os.walk(out))
    return {
        "finished": summary["finished"],
        "ms_per_prompt": 1000 * seconds / n,
        "db_bytes_per_prompt": database / n,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "suite_rss_mb": suite_rss_mb,
        "largest_page_mb": max(pages) / 2**20 if pages else 0.0,
        "report_pages": len(pages),
        "most_files_in_a_folder": per_folder,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--presets", nargs="+", default=["paper", "deep"])
    parser.add_argument("--child", nargs=3, metavar=("PRESET", "N", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        preset, n, out = args.child
        print(json.dumps(child(preset, int(n), Path(out))))
        return
    results: dict[tuple[str, int], dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        from rationalrewards.agents.suite import write_jsonl
        from rationalrewards.sketch.suites import make_suite

        for n in args.sizes:  # every row its own seed, so no two items share a generation
            write_jsonl(
                (row | {"seed": i} for i, row in enumerate(make_suite(n, seed=11))), Path(tmp) / f"suite-{n}.jsonl"
            )
        for preset in args.presets:
            for n in args.sizes:
                command = [sys.executable, __file__, "--child", preset, str(n), str(Path(tmp) / f"{preset}-{n}")]
                done = subprocess.run(command, capture_output=True, text=True, check=True)
                results[(preset, n)] = json.loads(done.stdout.strip().splitlines()[-1])
                row = results[(preset, n)]
                print(
                    f"{preset:>5} x {n:>6}: "
                    + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()),
                    flush=True,
                )
    small, large = min(args.sizes), max(args.sizes)
    for preset in args.presets:
        a, b = results[(preset, small)], results[(preset, large)]
        growth = (b["peak_rss_mb"] - a["peak_rss_mb"]) * 1024 / (large - small)
        suite = (b["suite_rss_mb"] - a["suite_rss_mb"]) * 1024 / (large - small)
        print(
            f"{preset}: time per prompt {large} / {small}: {b['ms_per_prompt'] / a['ms_per_prompt']:.3f} (target <= 1.1); "
            f"db bytes per prompt at {large}: {b['db_bytes_per_prompt']:.0f} (target <= 4096); peak RSS at {large}: "
            f"{b['peak_rss_mb']:.0f} MB (target < 400), growth {growth:.2f} KB per prompt (target <= 2), of which the suite "
            f"itself {suite:.2f} KB; largest page "
            f"{b['largest_page_mb']:.2f} MB (target <= 5); most files in a folder {b['most_files_in_a_folder']} (target <= 1000)"
        )


if __name__ == "__main__":
    main()
