"""Single-shot ground-truth accuracy of the sketch generator, per tag and overall (GenEval's mean over tags).

Three prompt sets, 4 seeds each: the 553 GenEval prompts as written, a generated suite in GenEval phrasing (seven
tags with text rendering), and the same specs written explicitly (`render_prompt(spec, explicit=True)`, the form the
oracle's refined requests take). Accuracy is judged on the scene graphs the generator draws from.

    .venv/bin/python benchmarks/sketch_accuracy.py [--geneval benchmarks/data/geneval/evaluation_metadata.jsonl]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from rationalrewards.agents.grading import accuracy_by_tag
from rationalrewards.sketch.generator import SketchGenerator
from rationalrewards.sketch.scene import score_against_spec
from rationalrewards.sketch.spec import SceneSpec, render_prompt
from rationalrewards.sketch.suites import make_suite

DEFAULT_GENEVAL = Path(__file__).resolve().parent / "data/geneval/evaluation_metadata.jsonl"


def accuracy(generator: SketchGenerator, rows: list[dict], explicit: bool, seeds: int) -> dict[str, float]:
    results = []
    for row in rows:
        spec = SceneSpec.from_geneval(row)
        prompt = render_prompt(spec, explicit=True) if explicit else row["prompt"]
        results += [score_against_spec(generator.scene_for(prompt, seed), spec) for seed in range(seeds)]
    return accuracy_by_tag(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--geneval", type=Path, default=DEFAULT_GENEVAL)
    parser.add_argument("--suite-size", type=int, default=700)
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    sets = {"generated suite, GenEval phrasing": make_suite(args.suite_size, seed=11)}
    if args.geneval.exists():
        sets = {"GenEval 553 prompts": [json.loads(line) for line in args.geneval.open()]} | sets
    else:
        print(f"(GenEval metadata not found at {args.geneval}; skipping that set)")
    with tempfile.TemporaryDirectory() as tmp:
        generator = SketchGenerator(tmp)
        for name, rows in sets.items():
            for explicit in (False, True):
                acc = accuracy(generator, rows, explicit, args.seeds)
                label = f"{name}, {'explicit (ideal) prompts' if explicit else 'as written'}"
                tags = "  ".join(f"{tag} {value:.3f}" for tag, value in acc.items() if tag != "overall")
                print(f"{label}: overall {acc['overall']:.3f}\n    {tags}")


if __name__ == "__main__":
    main()
