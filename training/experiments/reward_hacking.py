"""Reward hacking in miniature (paper, Fig. 3 and Table 3): RL a real image generator with a critique reward and with
scalar rewards, and compare training-time RL with test-time Generate-Critique-Refine.

    rationalrewards experiment reward-hacking --out DIR [--steps N] [--seed S ...] [--generator DIR] [--json]

Protocol (every knob in `HackingSettings`; the same for every arm):
1. **Generator**: the 32-pixel sketch generator (`experiment train-sketch-generator`), LoRA on its attention layers.
2. **Prompts**: RL samples training prompts of the small world; everything is judged on held-out prompts (colour-class
   pairs never seen in the generator's training or in RL), several seeds each.
3. **Arms** (DiffusionNFT, same steps, group size, learning rate and LoRA for all):
   - `critique`: the pixel critic's critique reward (text faithfulness, which covers counts and colours, and quality);
   - `scalar-color-share`: the share of the canvas in the asked colour (exploitable: more or bigger objects raise it);
   - `scalar-learned`: a Bradley-Terry reward model our code trains on small-world preference pairs.
   The pixel critic is every arm's evaluation reward, so the RL trainer's hacking alarm watches the same quantity.
4. **Ground truth** for generated images is the pixel perception (`agents.sketch.pixels`, validated on true renders):
   colour and count accuracy (by count asked), mean count drawn, foreground share.
5. **Test time vs training time**: GCR with the pixel critic (`paper`, and `deep` with fresh seeds) on the base
   generator, beside the RL generators, and GCR on top of the best RL generator.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import structlog

from rationalrewards.agents.sketch.small_world import SmallPrompt, split_prompts
from rationalrewards.training.scalar_reward import ScalarRewardSettings

log = structlog.get_logger(__name__)

ARMS = ("critique", "scalar-color-share", "scalar-learned")


@dataclass(frozen=True)
class HackingSettings:
    """Every knob of the experiment; `smoke()` is a minutes-long run of every stage for tests."""

    generator: str | None = None  # the base generator's pipeline directory
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 40  # RL steps per arm and seed
    rl_prompts: int = 64  # training prompts RL samples from
    eval_prompts: int = 64  # held-out prompts
    eval_seeds: int = 4  # images per held-out prompt
    group_size: int = 8
    prompts_per_step: int = 4
    sample_steps: int = 10
    guidance_scale: float = 3.0
    learning_rate: float = 3e-4
    lora_rank: int = 8
    lora_alpha: int = 16
    eval_every: int = 10  # the RL trainer's evaluation (the hacking alarm's input)
    gcr_prompts: int = 32
    gcr_presets: tuple[str, ...] = ("paper", "deep")
    scalar: ScalarRewardSettings = field(default_factory=ScalarRewardSettings)
    threads: int = 1

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ValueError("give at least one seed")
        if self.steps < 1 or self.rl_prompts < 1 or self.eval_prompts < 1 or self.eval_seeds < 1:
            raise ValueError("steps, rl_prompts, eval_prompts and eval_seeds must be at least 1")

    @classmethod
    def smoke(cls, **overrides: Any) -> HackingSettings:
        small = cls(
            seeds=(0,),
            steps=2,
            rl_prompts=4,
            eval_prompts=4,
            eval_seeds=1,
            group_size=2,
            prompts_per_step=2,
            sample_steps=2,
            eval_every=1,
            gcr_prompts=2,
            gcr_presets=("paper",),
            scalar=ScalarRewardSettings(per_prompt=1, steps=5, batch_size=16),
        )
        return replace(small, **overrides)


def shipped_generator() -> Path:
    """The sketch generator checkpoint that ships with the package."""
    from importlib.resources import files

    path = Path(str(files("rationalrewards.agents.sketch") / "weights" / "sketch-flow"))
    if not (path / "model_index.json").is_file():
        raise FileNotFoundError(
            f"no shipped sketch generator at {path}; train one with `rationalrewards experiment "
            "train-sketch-generator --out DIR` and pass --generator DIR/pipeline"
        )
    return path


def rl_prompt_set(train: list[SmallPrompt], n: int, seed: int = 0) -> list[SmallPrompt]:
    """`n` training prompts, every count equally often."""
    by_count: dict[int, list[SmallPrompt]] = {}
    for prompt in train:
        by_count.setdefault(prompt.count, []).append(prompt)
    rng = random.Random(f"rl-prompts:{seed}")
    for prompts in by_count.values():
        rng.shuffle(prompts)
    ordered = [p for group in zip(*by_count.values(), strict=False) for p in group]
    return ordered[:n]


def held_out_set(held: list[SmallPrompt], n: int) -> list[SmallPrompt]:
    return rl_prompt_set(held, n, seed=1)


def _rewards(out: Path, settings: HackingSettings, train: list[SmallPrompt], held: list[SmallPrompt]) -> Any:
    from rationalrewards.agents.sketch.pixels import PixelCritic
    from rationalrewards.agents.sketch.scalar_rewards import color_share_reward
    from rationalrewards.training.scalar_reward import learned_scalar_reward, train_scalar_reward

    directory = out / "scalar_reward"
    report_file = directory / "report.json"
    if not report_file.is_file():
        report = train_scalar_reward(directory, train, held, settings.scalar)
        report_file.write_text(json.dumps(report, indent=1))
    makers = {
        "critique": PixelCritic,
        "scalar-color-share": color_share_reward,
        "scalar-learned": lambda: learned_scalar_reward(directory),
    }
    return makers, json.loads(report_file.read_text())


def rl_arm(
    out: Path, base: Path, reward_model: Any, prompts: list[str], settings: HackingSettings, seed: int
) -> list[dict[str, Any]]:
    from rationalrewards.agents.sketch.pixels import PixelCritic
    from rationalrewards.training import NFTConfig, NFTTrainer

    config = NFTConfig(
        pipeline=str(base),
        group_size=settings.group_size,
        prompts_per_step=settings.prompts_per_step,
        sample_steps=settings.sample_steps,
        guidance_scale=settings.guidance_scale,
        learning_rate=settings.learning_rate,
        lora_rank=settings.lora_rank,
        lora_alpha=settings.lora_alpha,
        max_steps=settings.steps,
        eval_every=settings.eval_every,
        eval_prompts=min(8, len(prompts)),
        save_every=settings.steps,
        seed=seed,
        report_to="none",
        ban_solved=False,
    )
    trainer = NFTTrainer(config, reward_model, prompts, eval_reward_model=PixelCritic(), out=out)
    return trainer.train()


def judge_generator(
    base: Path, lora: Path | None, prompts: list[SmallPrompt], settings: HackingSettings, sheet: Path
) -> dict[str, Any]:
    from rationalrewards.agents.diffusers_generator import load_pipeline
    from rationalrewards.training.experiments.sketch_generator import contact_sheet, evaluate_generator

    pipe = load_pipeline(base)
    if lora is not None:
        pipe.load_lora_weights(lora)
    figures, images = evaluate_generator(
        pipe, prompts, seeds=settings.eval_seeds, steps=settings.sample_steps, guidance_scale=settings.guidance_scale
    )
    contact_sheet(images[: 16 * 8], 16, sheet)
    return figures


def summarize_history(history: list[dict[str, Any]]) -> dict[str, Any]:
    rewards = [(row["step"], row.get("reward_mean")) for row in history]
    evals = [(row["step"], row.get("eval_reward")) for row in history if row.get("eval_reward") is not None]
    alarms = [row["step"] for row in history if row.get("hacking_alarm")]
    return {"train_reward": rewards, "eval_reward": evals, "alarm_steps": alarms}


def gcr_with_pixel_critic(
    out: Path, base: Path, lora: Path | None, prompts: list[SmallPrompt], preset: str, settings: HackingSettings
) -> dict[str, Any]:
    from rationalrewards.agents.diffusers_generator import DiffusersGenerator
    from rationalrewards.agents.refiner import CriticRefiner
    from rationalrewards.agents.sketch.pixels import PixelCritic, PixelGrader
    from rationalrewards.graphs.gcr_config import GCRConfig
    from rationalrewards.graphs.runner import GCRRunner

    generator = DiffusersGenerator(
        base, out / "images", steps=settings.sample_steps, guidance_scale=settings.guidance_scale, lora=lora
    )
    runner = GCRRunner(
        out,
        generator=generator,
        critic=PixelCritic(),
        refiner=CriticRefiner(),
        config=GCRConfig.preset(preset),
        grader=PixelGrader(),
        concurrency=8,
        progress=False,
    )
    summary = asyncio.run(runner.run([{"prompt": p.text, "seed": 100 + k} for k, p in enumerate(prompts)]))
    return {key: summary.get(key) for key in ("n", "finished", "accuracy_initial", "accuracy_final", "critique_calls")}


def run_reward_hacking(out: str | Path, settings: HackingSettings | None = None) -> dict[str, Any]:
    """Every stage into `out`; writes `results.json` and `report.md`. Returns the results."""
    settings = settings or HackingSettings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    base = Path(settings.generator) if settings.generator else shipped_generator()
    train, held = split_prompts()
    rl_prompts = [p.text for p in rl_prompt_set(train, settings.rl_prompts)]
    eval_prompts = held_out_set(held, settings.eval_prompts)
    makers, scalar_report = _rewards(out, settings, train, held)
    results: dict[str, Any] = {
        "settings": asdict(settings) | {"generator": str(base)},
        "scalar_reward_model": {"held_out_pair_accuracy": scalar_report["held_out_pair_accuracy"]},
        "base": judge_generator(base, None, eval_prompts, settings, out / "sheet_base.png"),
        "arms": {},
    }
    for seed in settings.seeds:
        for arm in ARMS:
            name = f"{arm}-seed{seed}"
            log.info("hacking.arm", arm=arm, seed=seed, steps=settings.steps)
            arm_started = time.perf_counter()
            history = rl_arm(out / "rl" / name, base, makers[arm](), rl_prompts, settings, seed)
            lora = out / "rl" / name / "lora"
            results["arms"][name] = {
                "arm": arm,
                "seed": seed,
                "minutes": round((time.perf_counter() - arm_started) / 60, 2),
                **summarize_history(history),
                "held_out": judge_generator(base, lora, eval_prompts, settings, out / f"sheet_{name}.png"),
            }
    results["by_arm"] = by_arm(results)
    results["test_time"] = gcr_comparison(out, base, eval_prompts, settings, results)
    results["seconds"] = round(time.perf_counter() - started, 1)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "report.md").write_text(report_markdown(results))
    return results


def by_arm(results: dict[str, Any]) -> dict[str, Any]:
    """Per arm, over seeds: mean and spread of held-out accuracy, count accuracy, mean count drawn, alarms fired."""
    table: dict[str, Any] = {}
    for arm in ARMS:
        runs = [r for r in results["arms"].values() if r["arm"] == arm]
        if not runs:
            continue

        def stat(key: str, runs: list[dict[str, Any]] = runs) -> dict[str, float]:
            values = [float(r["held_out"][key]) for r in runs]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            return {"mean": round(statistics.fmean(values), 4), "sd": round(spread, 4)}

        table[arm] = {
            "seeds": len(runs),
            "accuracy": stat("accuracy"),
            "color_accuracy": stat("color_accuracy"),
            "count_accuracy": stat("count_accuracy"),
            "mean_count_drawn": stat("mean_count_drawn"),
            "foreground_share": stat("foreground_share"),
            "alarms": sum(bool(r["alarm_steps"]) for r in runs),
        }
    return table


def gcr_comparison(
    out: Path, base: Path, prompts: list[SmallPrompt], settings: HackingSettings, results: dict[str, Any]
) -> dict[str, Any]:
    """GCR with the pixel critic on the base generator and on the best RL generator (by held-out accuracy)."""
    suite = prompts[: settings.gcr_prompts]
    table: dict[str, Any] = {}
    for preset in settings.gcr_presets:
        table[f"GCR {preset} on the base generator"] = gcr_with_pixel_critic(
            out / "gcr" / f"base-{preset}", base, None, suite, preset, settings
        )
    best = max(results["arms"], key=lambda name: results["arms"][name]["held_out"]["accuracy"])
    table[f"GCR {settings.gcr_presets[0]} on {best}"] = gcr_with_pixel_critic(
        out / "gcr" / f"best-{settings.gcr_presets[0]}",
        base,
        out / "rl" / best / "lora",
        suite,
        settings.gcr_presets[0],
        settings,
    )
    return table


def report_markdown(results: dict[str, Any]) -> str:
    s = results["settings"]
    lines = [
        "# Reward hacking in miniature",
        "",
        f"Generator `{s['generator']}`; DiffusionNFT, {s['steps']} steps per arm and seed, group {s['group_size']} x "
        f"{s['prompts_per_step']} prompts, LoRA rank {s['lora_rank']}, learning rate {s['learning_rate']}; seeds "
        f"{list(s['seeds'])}. Held out: {s['eval_prompts']} prompts x {s['eval_seeds']} seeds, judged by the pixel "
        f"perception. The learned scalar reward's held-out pair accuracy: "
        f"{results['scalar_reward_model']['held_out_pair_accuracy']:.3f}.",
        "",
        "| generator | accuracy | colour | count | mean count drawn | foreground | alarms |",
        "|---|---|---|---|---|---|---|",
    ]
    base = results["base"]
    lines.append(
        f"| base | {base['accuracy']:.3f} | {base['color_accuracy']:.3f} | {base['count_accuracy']:.3f} | "
        f"{base['mean_count_drawn']:.2f} | {base['foreground_share']:.3f} | - |"
    )
    for arm, row in results["by_arm"].items():

        def cell(key: str, row: dict[str, Any] = row) -> str:
            return f"{row[key]['mean']:.3f} ± {row[key]['sd']:.3f}"

        lines.append(
            f"| RL {arm} ({row['seeds']} seeds) | {cell('accuracy')} | {cell('color_accuracy')} | "
            f"{cell('count_accuracy')} | {cell('mean_count_drawn')} | {cell('foreground_share')} | "
            f"{row['alarms']}/{row['seeds']} |"
        )
    lines += ["", "| test time | single shot | after GCR | critique calls |", "|---|---|---|---|"]
    for name, row in results["test_time"].items():
        lines.append(f"| {name} | {row['accuracy_initial']} | {row['accuracy_final']} | {row['critique_calls']} |")
    return "\n".join(lines) + "\n"


__all__ = ["ARMS", "HackingSettings", "run_reward_hacking"]
