"""Sketch world throughput on this machine: images rendered per second (PNG + sidecar written) and oracle critiques
per second (sidecar read, judged, rendered as text, parsed by the real parser), 256x256 default.

    .venv/bin/python benchmarks/sketch_throughput.py [--n 500] [--size 256]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time

from rationalrewards.rewardmodel import Critique, CritiqueRequest
from rationalrewards.sketch.generator import SketchGenerator
from rationalrewards.sketch.oracle import SketchOracle
from rationalrewards.sketch.suites import make_suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    rows = make_suite(args.n, seed=7)
    with tempfile.TemporaryDirectory() as tmp:
        generator = SketchGenerator(tmp, size=args.size)
        generator.generate_one(rows[0]["prompt"], 0)  # warm the glyph cache and imports
        start = time.perf_counter()
        images = [generator.generate_one(row["prompt"], seed) for seed, row in enumerate(rows)]
        render_s = time.perf_counter() - start
        oracle = SketchOracle()
        requests = [
            CritiqueRequest(prompt=row["prompt"], image=made.image) for row, made in zip(rows, images, strict=True)
        ]
        start = time.perf_counter()
        results = asyncio.run(oracle.critique(requests * 4))
        critique_s = time.perf_counter() - start
    parsed = sum(isinstance(r, Critique) for r in results)
    print(
        f"cpu cores: {os.cpu_count()}; one process; {args.size}x{args.size}; suite of {args.n} prompts, all seven tags"
    )
    print(f"renders_per_s: {args.n / render_s:.0f}  (PNG and scene-graph sidecar written; target >= 200)")
    print(
        f"critiques_per_s: {len(results) / critique_s:.0f}  ({parsed}/{len(results)} parsed by parse_critique; target >= 1000)"
    )


if __name__ == "__main__":
    main()
