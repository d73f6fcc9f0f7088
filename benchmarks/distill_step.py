"""Distillation step throughput of the tiny Qwen-VL student, and the share of step time spent outside forward and
backward (collation: chat template, tokenisation, image loading and processing).

Trains on a PARROT export of the sketch world (256x256 images, release-profile requests), at the default per-device
batch (4) with no gradient accumulation, on this process's CPU threads (set OMP_NUM_THREADS=1 as for training). Both
figures come from the same run: tokens per second over the training time, and the collator's own clock over it.
Target: collation and image processing at most 10% of step time.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/distill_step.py [--pairs 24] [--steps 20] [--batch 4]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from rationalrewards.runtime.job_configs import ParrotJob
from rationalrewards.runtime.jobs import parrot_job
from rationalrewards.training.distill_config import DistillConfig
from rationalrewards.training.distill_trainer import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--family", default="qwen2_vl")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "parrot"
        parrot_job(ParrotJob(out=export, world="sketch", pairs_count=args.pairs, progress=False))
        config = DistillConfig(
            output_dir="unused",
            tiny=True,
            tiny_family=args.family,
            data=[str(export)],
            max_steps=args.steps,
            per_device_train_batch_size=args.batch,
            gradient_accumulation_steps=1,
            eval_share=0.0,
            eval_every=0,
            report_to=["none"],
            save_steps=10_000,
            logging_steps=1,
            disable_tqdm=True,
        )
        figures = train(config, Path(tmp) / "run")
    seconds, collate = figures["seconds"], figures["collate_seconds"]
    result = {
        "steps": figures["steps"],
        "batch": args.batch,
        "rows_used": figures["rows_used"],
        "train_seconds": seconds,
        "tokens_per_second": round(figures["train_tokens"] / seconds, 1),
        "seconds_per_step": round(seconds / figures["steps"], 3),
        "collate_seconds": collate,
        "collate_share_of_step_time": round(collate / seconds, 4),
        "target_share": 0.10,
        "meets_target": collate / seconds <= 0.10,
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
