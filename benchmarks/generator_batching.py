"""Dynamic batching of a diffusers generator through the GCR runner vs direct pipeline calls (issue 15).

A tiny Stable-Diffusion pipeline built from config makes the same number of images three ways, interleaved in one run:
direct pipeline calls of 8 prompts (one generator per image), direct calls of 1, and the GCR runner (`paper` preset,
a fake critic that passes everything, so each prompt asks for exactly one image) over concurrent prompts, whose
requests the generator's `MicroBatcher` gathers into pipeline calls of up to 8. Prints images/s and the ratios.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/generator_batching.py [--images 64] [--steps 10] [--size 64]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import torch

from rationalrewards.agents.diffusers_generator import DiffusersGenerator, save_tiny_sd_pipeline
from rationalrewards.agents.refiner import CriticRefiner
from rationalrewards.agents.suite import SuiteRow
from rationalrewards.graphs.gcr_config import GCRConfig
from rationalrewards.rewardmodel.backends.function import FunctionRewardModel
from rationalrewards.runtime.gcr_runner import GCRRunner

PASS_ALL = {"text_faithfulness": 4.0, "physical_quality": 4.0, "text_rendering": None}


def direct(generator: DiffusersGenerator, prompts: list[str], batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(prompts), batch):
        chunk = prompts[start : start + batch]
        generator.pipe(
            chunk,
            num_inference_steps=generator.steps,
            height=generator.size,
            width=generator.size,
            generator=[torch.Generator().manual_seed(i) for i in range(len(chunk))],
        )
    return len(prompts) / (time.perf_counter() - started)


def through_runner(generator: DiffusersGenerator, prompts: list[str], out: Path) -> tuple[float, list[int]]:
    generator.batcher.batch_sizes.clear()
    runner = GCRRunner(
        out,
        generator=generator,
        critic=FunctionRewardModel(lambda request: PASS_ALL),
        refiner=CriticRefiner(),
        config=GCRConfig.preset("paper"),
        concurrency=16,
        progress=False,
        settings={"benchmark": "generator_batching"},
    )
    rows = [SuiteRow(prompt=prompt, id=f"p{i}", seed=i) for i, prompt in enumerate(prompts)]
    started = time.perf_counter()
    asyncio.run(runner.run(rows))
    return len(prompts) / (time.perf_counter() - started), list(generator.batcher.batch_sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    prompts = [f"a photo of {n} {thing}" for n in range(args.images) for thing in ("clocks",)][: args.images]
    rates: dict[str, list[float]] = {"direct, batch 8": [], "direct, batch 1": [], "GCR runner, dynamic batching": []}
    sizes: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = save_tiny_sd_pipeline(Path(tmp) / "tiny-sd")
        generator = DiffusersGenerator(
            pipeline, Path(tmp) / "images", steps=args.steps, size=args.size, max_batch=8, max_wait=0.02
        )
        direct(generator, prompts[:8], 8)  # warm-up
        for repeat in range(args.repeats):
            rates["direct, batch 8"].append(direct(generator, prompts, 8))
            rates["direct, batch 1"].append(direct(generator, prompts, 1))
            rate, sizes = through_runner(generator, prompts, Path(tmp) / f"run{repeat}")
            rates["GCR runner, dynamic batching"].append(rate)
    print(
        f"tiny SD pipeline, {args.size} px, {args.steps} steps, {args.images} images, {args.repeats} interleaved repeats"
    )
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, median in medians.items():
        print(f"{name:>30}: {median:7.2f} images/s  (runs: {', '.join(f'{v:.2f}' for v in rates[name])})")
    print(f"batch sizes the runner's requests landed in (last run): {sorted(sizes, reverse=True)}")
    print(f"batch 8 / batch 1, direct: {medians['direct, batch 8'] / medians['direct, batch 1']:.2f}x")
    ratio = medians["GCR runner, dynamic batching"] / medians["direct, batch 8"]
    print(f"ratio runner / direct at batch 8: {ratio:.3f}  (target >= 0.85)")


if __name__ == "__main__":
    main()
