"""PARROT throughput against a loopback OpenAI-compatible teacher with 300 ms latency and 64 requests in flight.

Each kept pair costs 4 teacher calls (anchored, re-prediction, two projections), so the ideal is
concurrency / (4 x latency) pairs per second: the teacher's 64 slots always busy. The runner keeps
`pairs_in_flight(64)` = 80 pairs in flight, as `rationalrewards parrot --concurrency 64` does, so the slots stay full
while some pairs parse and checkpoint between calls. The teacher answers PARROT's three prompts consistently, so every pair is
kept and does all four calls. Prints pairs per second as a ratio of that ideal.

    .venv/bin/python benchmarks/parrot_throughput.py [--n 1000] [--concurrency 64] [--latency 0.3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from rationalrewards.agents.preferences import load_preferences
from rationalrewards.graphs.parrot import ParrotConfig
from rationalrewards.rewardmodel.backends.openai_compat import OpenAICompatibleRewardModel
from rationalrewards.rewardmodel.mock_server import free_port
from rationalrewards.runtime.parrot_runner import ParrotRunner, pairs_in_flight


def _pairs(directory: Path, n: int) -> Path:
    rng = random.Random(0)
    images = []
    for k in range(40):  # a pool of distinct 256x256 images
        path = directory / f"img{k}.png"
        Image.new("RGB", (256, 256), tuple(rng.randrange(256) for _ in range(3))).save(path)
        images.append(path.name)
    path = directory / "pairs.jsonl"
    with path.open("w") as f:
        for i in range(n):
            a, b = rng.sample(images, 2)
            f.write(
                json.dumps(
                    {
                        "pair_id": f"p{i:05d}",
                        "prompt": f"a photo of {rng.randint(2, 4)} clocks",
                        "image_a": a,
                        "image_b": b,
                        "label": rng.choice("AB"),
                    }
                )
                + "\n"
            )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.3)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rationalrewards.rewardmodel.mock_server",
            "--port",
            str(port),
            "--latency",
            str(args.latency),
            "--no-validate",
            "--responder",
            "parrot",
        ]
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = Path(tmp)
            report = load_preferences(_pairs(tmp_path, args.n))
            teacher = OpenAICompatibleRewardModel(
                f"http://127.0.0.1:{port}", "mock-teacher", concurrency=args.concurrency
            )
            asyncio.run(teacher.wait_until_healthy(30))
            runner = ParrotRunner(
                tmp_path / "out",
                teacher=teacher,
                config=ParrotConfig(),
                concurrency=pairs_in_flight(args.concurrency),
                progress=False,
            )
            start = time.perf_counter()
            card = asyncio.run(runner.run(report))
            elapsed = time.perf_counter() - start
            timing = json.loads((tmp_path / "out" / "timing.json").read_text())
    finally:
        server.terminate()
        server.wait()
    ideal = args.concurrency / (4 * args.latency)
    achieved = card["kept"] / elapsed
    pairs_seconds = float(timing["seconds"])  # the pairs phase alone (timing.json): the export and plot come after
    print(
        f"pairs: {args.n}; kept {card['kept']}; teacher calls {card['teacher_calls']}; concurrency {args.concurrency}; latency {args.latency * 1000:.0f} ms"
    )
    print(f"elapsed {elapsed:.2f} s (export included); {achieved:.1f} kept pairs/s; ideal {ideal:.1f}")
    print(f"pairs phase {pairs_seconds:.2f} s (export and histogram plot after it: {elapsed - pairs_seconds:.2f} s)")
    print(f"ratio_of_ideal, pairs phase: {card['kept'] / pairs_seconds / ideal:.3f}  (target >= 0.85)")
    print(f"ratio_of_ideal, export included: {achieved / ideal:.3f}")


if __name__ == "__main__":
    main()
