"""Time per RL step with an instant reward vs a critic 200 ms away on loopback (issue 13's overlap target).

The same tiny SD3 pipeline and config (the defaults: 8 prompt groups of 8 images, 15 sampler steps) train under two
rewards: an in-process function returning a canned critique, and the OpenAI-compatible mock critic answering the
same critique after `--latency` seconds. Each chunk's images are critiqued while the next chunk samples, so only the
last chunk's latency should show. Steps alternate between the two trainers (this machine is noisy) after one warm-up
step each; the ratio of median step times is printed.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/rl_step.py [--steps 4] [--latency 0.2] [--algo nft]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from rationalrewards.rewardmodel.backends.function import FunctionRewardModel
from rationalrewards.rewardmodel.backends.openai_compat import OpenAICompatibleRewardModel
from rationalrewards.rewardmodel.mock_server import canned_critique_text, free_port
from rationalrewards.training import GRPOConfig, GRPOTrainer, NFTConfig, NFTTrainer

PROMPTS = [f"a photo of {n} {thing}" for n in ("one", "two", "three", "four") for thing in ("cats", "clocks")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="timed steps per reward (after one warm-up step)")
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--algo", choices=("nft", "grpo"), default="nft")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config_class, trainer_class = (NFTConfig, NFTTrainer) if args.algo == "nft" else (GRPOConfig, GRPOTrainer)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "rationalrewards.rewardmodel.mock_server", "--port", str(port),
         "--latency", str(args.latency), "--no-validate"]
    )  # fmt: skip
    try:
        import asyncio

        url = f"http://127.0.0.1:{port}"
        asyncio.run(OpenAICompatibleRewardModel(url).wait_until_healthy(30))
        rewards = {
            "instant": FunctionRewardModel(lambda request: canned_critique_text(), name="instant"),
            f"{args.latency * 1000:.0f} ms loopback": OpenAICompatibleRewardModel(url, "mock-critic", prompts="house"),
        }
        with tempfile.TemporaryDirectory() as tmp:
            trainers = {
                name: trainer_class(
                    config_class(tiny=True, max_steps=args.steps + 1, report_to="none", ban_solved=False),
                    reward,
                    PROMPTS,
                    out=Path(tmp) / name.replace(" ", "_"),
                )
                for name, reward in rewards.items()
            }
            seconds: dict[str, list[float]] = {name: [] for name in trainers}
            waits: dict[str, list[float]] = {name: [] for name in trainers}
            for round_number in range(args.steps + 1):
                for name, trainer in trainers.items():
                    row = trainer.train_step()
                    if round_number:  # the first step of each is a warm-up
                        seconds[name].append(row["seconds"])
                        waits[name].append(row["reward_wait_seconds"])
            for trainer in trainers.values():
                trainer.reward.close()
    finally:
        server.terminate()
        server.wait()
    config = config_class(tiny=True)
    print(
        f"{args.algo}: tiny SD3, {config.prompts_per_step} groups x {config.group_size} images, "
        f"{config.sample_steps} sampler steps, {args.steps} timed steps per reward"
    )
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    for name, median in medians.items():
        print(
            f"{name:>18}: median step {median:.3f} s (steps {', '.join(f'{s:.3f}' for s in seconds[name])}); "
            f"median wait for rewards after sampling {statistics.median(waits[name]):.3f} s"
        )
    instant, slow = medians.values()
    print(f"ratio slow/instant: {slow / instant:.3f}  (target <= 1.2)")


if __name__ == "__main__":
    main()
