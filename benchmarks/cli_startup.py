"""How long `rationalrewards COMMAND --help` takes, for every command (the flags of each are generated from config
dataclasses that import neither torch nor trl). Each is run `--repeats` times in a fresh process; the median is
printed with its ratio to `rationalrewards --help` measured in the same run, and to the 1 s target.

    python benchmarks/cli_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = [
    [],
    ["critique"],
    ["compare"],
    ["refine"],
    ["parrot"],
    ["eval"],
    ["distill"],
    ["distill", "merge"],
    ["rl"],
    ["serve"],
    ["serve-generator"],
    ["experiment", "parrot-ablation"],
    ["experiment", "reward-hacking"],
    ["sketch", "render"],
]


def seconds(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "rationalrewards", *command, "--help"], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{command} --help failed: {done.stderr[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    medians = {}
    for _ in range(repeats):  # interleaved, so machine noise falls on every command alike
        for command in COMMANDS:
            medians.setdefault(" ".join(command) or "(top level)", []).append(seconds(command))
    base = statistics.median(medians["(top level)"])
    print(f"{'command':<34} {'median s':>9} {'x top level':>11} {'x 1 s target':>12}")
    for name, times in medians.items():
        median = statistics.median(times)
        print(f"{name:<34} {median:>9.3f} {median / base:>11.2f} {median / 1.0:>12.2f}")


if __name__ == "__main__":
    main()
