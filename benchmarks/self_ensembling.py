"""Self-ensembling's gain against N with a fallible critic (issue: real data in).

The critic is the sketch world's oracle with perception noise (it misperceives objects, colours and counts at random,
independently per seed): a stand-in for a sampling VLM critic whose answers differ from run to run. N replicas with
seeds in turn answer each pair, and their per-aspect means decide (`SelfEnsemble`, as `--samples N`). Pairs: the
sketch world's ground-truth preference pairs (about a third are ties). Prints decisive-pair accuracy (ours) with its
95% Wilson interval, accuracy over all pairs (a tie label is right only for a predicted tie) and the predicted-tie rate for each N, averaged over `--seeds` critic seeds, and with `--plot` draws the curve.

    .venv/bin/python benchmarks/self_ensembling.py [--pairs 300] [--noise 0.3] [--samples 1 2 4 8] [--seeds 3] [--plot docs/self_ensembling.png]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from rationalrewards.agents.preferences import load_preferences
from rationalrewards.rewardmodel.backends.ensemble import SelfEnsemble
from rationalrewards.rewardmodel.schemas import CompareRequest
from rationalrewards.rewardmodel.scoring import pairwise_accuracy
from rationalrewards.runtime.eval_runner import wilson_interval
from rationalrewards.sketch.oracle import SketchOracle
from rationalrewards.sketch.world import SketchWorld


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--noise", type=float, default=0.3)
    parser.add_argument("--samples", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pairs = load_preferences(SketchWorld().pairs(Path(tmp), args.pairs, label_noise=0.0, seed=11)).pairs
        labels = [p.label for p in pairs]
        requests = [CompareRequest.like(p) for p in pairs]
        rows = []
        for n in args.samples:
            correct = decisive = ties = judged = overall = 0
            for seed in range(args.seeds):
                critics = [SketchOracle(perception_noise=args.noise, seed=1000 * seed + i) for i in range(n)]
                results = asyncio.run(SelfEnsemble(critics, n).compare(requests))
                figures = pairwise_accuracy(results, labels)
                d = sum(label != "tie" for label in labels)
                decisive += d
                correct += round((figures.accuracy_decisive or 0) * d)
                ties += figures.predicted_ties
                judged += figures.judged
                overall += figures.correct
            low, high = wilson_interval(correct, decisive) or (0.0, 0.0)
            rows.append((n, correct / decisive, low, high, ties / judged, overall / judged))
            print(f"N={n:>2}: decisive accuracy {100 * correct / decisive:.1f}% (95% {100 * low:.1f}-{100 * high:.1f}%), "
                  f"accuracy with tie labels {100 * overall / judged:.1f}%, predicted ties {100 * ties / judged:.1f}%  "
                  f"[{decisive} decisive judgements over {args.seeds} seeds]")  # fmt: skip
    print(f"gain N={args.samples[-1]} over N=1: {100 * (rows[-1][1] - rows[0][1]):+.1f} points "
          f"(perception noise {args.noise}, {args.pairs} pairs)")  # fmt: skip
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.2))
        ns = [r[0] for r in rows]
        ax.errorbar(ns, [100 * r[1] for r in rows], yerr=[[100 * (r[1] - r[2]) for r in rows], [100 * (r[3] - r[1]) for r in rows]],
                    marker="o", capsize=4, label="decisive-pair accuracy")  # fmt: skip
        ax.plot(ns, [100 * r[5] for r in rows], marker="^", label="accuracy, tie labels included")
        ax.plot(ns, [100 * r[4] for r in rows], marker="s", ls="--", label="predicted ties")
        ax.set_xscale("log", base=2)
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.set_xlabel("samples per pair (N)")
        ax.set_ylabel("%")
        ax.set_title(f"Self-ensembling, sketch oracle at perception noise {args.noise}")
        ax.legend()
        fig.savefig(args.plot, dpi=110, bbox_inches="tight")
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
