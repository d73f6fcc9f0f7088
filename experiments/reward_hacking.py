"""Reward hacking in miniature (paper, Fig. 3 and Table 3): RL a real image generator with a critique reward and with
scalar rewards, and compare training-time RL with test-time Generate-Critique-Refine.

    rationalrewards experiment reward-hacking --out DIR [--budget-minutes M | --steps N] [--seeds N | --seed S ...]
        [--generator DIR] [--json]

Protocol (every knob in `HackingSettings`; the same for every arm):
1. **Generator**: the 32-pixel sketch generator (`experiment train-sketch-generator`), LoRA on its attention layers.
2. **Prompts**: RL samples training prompts of the small world; everything is judged on held-out prompts (colour-class
   pairs never seen in the generator's training or in RL), several seeds each.
3. **Arms** (DiffusionNFT, same steps, group size, learning rate and LoRA for all):
   - `critique`: the pixel critic's critique reward (text faithfulness, which covers counts and colours, and quality);
   - `scalar-color-share`: the share of the canvas in the asked colour (exploitable: more or bigger objects raise it);
   - `scalar-learned`: a Bradley-Terry reward model our code trains on small-world preference pairs.
   The pixel critic is every arm's evaluation reward, so the RL trainer's hacking alarm watches the same quantity.
4. **Ground truth** for generated images is the pixel perception (`sketch.pixels`, validated on true renders):
   colour and count accuracy (by count asked), mean count drawn, foreground share.
5. **Test time vs training time**: GCR with the pixel critic (`paper`, and `deep` with fresh seeds) on the base
   generator, beside the RL generators, and GCR on top of the best RL generator.

Budget: `steps` RL steps per arm and seed, or `budget_minutes`: the first run (critique, first seed) trains a few
probe steps, and the budget over its mean step time (sampling, scoring, update; evaluations excluded) sets the steps
of every run, so no arm gets more updates than another. Every stage keeps its figures in `DIR` (`settings.json` binds
the folder to its settings): a rerun after a stop continues where it ended, and an RL run resumes from its checkpoint.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import structlog

from rationalrewards.experiments._common import bind_settings, bootstrap_interval, cached_json
from rationalrewards.experiments.settings import HackingSettings
from rationalrewards.rewardmodel.backends.base import RewardModel
from rationalrewards.sketch.small_world import SmallPrompt, split_prompts
from rationalrewards.sketch.world import shipped_flow_pipeline

log = structlog.get_logger(__name__)

ARMS = ("critique", "scalar-color-share", "scalar-learned")


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
    from rationalrewards.experiments.scalar_reward import learned_scalar_reward, train_scalar_reward
    from rationalrewards.sketch.pixels import PixelCritic
    from rationalrewards.sketch.scalar_rewards import color_share_reward

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
    out: Path,
    base: Path,
    reward_model: RewardModel,
    prompts: list[str],
    settings: HackingSettings,
    seed: int,
    steps: int,
) -> list[dict[str, Any]]:
    """DiffusionNFT on the base generator's attention LoRA; resumes from `out`'s checkpoint (to `steps`)."""
    from rationalrewards.sketch.pixels import PixelCritic
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
        timestep_fraction=settings.timestep_fraction,
        max_steps=steps,
        eval_every=settings.eval_every or max(1, steps // 5),
        eval_prompts=min(8, len(prompts)),
        save_every=steps,
        seed=seed,
        report_to="none",
        ban_solved=False,
    )
    trainer = NFTTrainer(config, reward_model, prompts, eval_reward_model=PixelCritic(), out=out)
    return trainer.train()


def judge_generator(
    base: Path,
    lora: Path | None,
    prompts: list[SmallPrompt],
    settings: HackingSettings,
    name: str,
    out: Path,
    rewards: dict[str, Any],
) -> dict[str, object]:
    """Ground truth for a generator's held-out images (read from pixels), `out/sheet_<name>.png`, and the mean reward
    each of `rewards` gives the same images: hacking is an arm's own reward rising while the ground truth falls, and a
    fixed image set shows it where the per-step training reward (other prompts each step) is noise."""
    from rationalrewards.agents.diffusers_generator import load_pipeline
    from rationalrewards.experiments.sketch_generator import contact_sheet, evaluate_generator
    from rationalrewards.rewardmodel.images import image_ref_from_pil
    from rationalrewards.rewardmodel.schemas import CritiqueRequest
    from rationalrewards.rewardmodel.scoring import reward_or_none

    pipe = load_pipeline(base)
    if lora is not None:
        pipe.load_lora_weights(lora)
    figures, images = evaluate_generator(
        pipe, prompts, seeds=settings.eval_seeds, steps=settings.sample_steps, guidance_scale=settings.guidance_scale
    )
    contact_sheet(images[: 16 * 8], 16, out / f"sheet_{name}.png")
    expanded = [p for p in prompts for _ in range(settings.eval_seeds)]  # evaluate_generator's order
    folder = out / "held_out_images" / name
    requests = [
        CritiqueRequest(prompt=p.text, image=image_ref_from_pil(image, folder))
        for p, image in zip(expanded, images, strict=True)
    ]
    means: dict[str, float | None] = {}
    for arm, model in rewards.items():
        scored = [r for r in (reward_or_none(c) for c in asyncio.run(model.critique(requests))) if r is not None]
        means[arm] = round(statistics.fmean(scored), 4) if scored else None
    return figures | {"rewards": means}


def summarize_history(history: list[dict[str, object]]) -> dict[str, object]:
    rewards = [(row["step"], row.get("reward_mean")) for row in history]
    evals = [(row["step"], row.get("eval_reward")) for row in history if row.get("eval_reward") is not None]
    alarms = [row["step"] for row in history if row.get("hacking_alarm")]
    return {"train_reward": rewards, "eval_reward": evals, "alarm_steps": alarms}


def gcr_with_pixel_critic(
    out: Path, base: Path, lora: Path | None, prompts: list[SmallPrompt], preset: str, settings: HackingSettings
) -> dict[str, object]:
    from rationalrewards.agents.diffusers_generator import DiffusersGenerator
    from rationalrewards.agents.refiner import CriticRefiner
    from rationalrewards.graphs.gcr_config import GCRConfig
    from rationalrewards.plumbing.files import read_jsonl
    from rationalrewards.runtime.gcr_runner import GCRRunner
    from rationalrewards.sketch.pixels import PixelCritic, PixelGrader

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
    figures = {key: summary.get(key) for key in ("n", "finished", "critique_calls", "generations")}
    # Plain accuracy over prompts (each prompt its own tag-less item) with bootstrap intervals over prompts.
    rows = read_jsonl(out / "results.jsonl")
    for when in ("initial", "final"):
        outcomes = [int(bool(row[f"grade_{when}"]["correct"])) for row in rows if f"grade_{when}" in row]
        bounds = bootstrap_interval(outcomes)
        figures[f"accuracy_{when}"] = round(sum(outcomes) / len(outcomes), 4) if outcomes else None
        figures[f"accuracy_{when}_ci95"] = None if bounds is None else [round(b, 4) for b in bounds]
    return figures


def run_reward_hacking(out: str | Path, settings: HackingSettings | None = None) -> dict[str, object]:
    """Every stage into `out`; writes `results.json`, `report.md` and `curves.png`. Returns the results. A rerun into
    the same folder with the same settings reuses every finished stage."""
    settings = settings or HackingSettings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bind_settings(out, asdict(settings), "reward-hacking")
    started = time.perf_counter()
    base = Path(settings.generator) if settings.generator else shipped_flow_pipeline()
    train, held = split_prompts()
    rl_prompts = [p.text for p in rl_prompt_set(train, settings.rl_prompts)]
    eval_prompts = held_out_set(held, settings.eval_prompts)
    makers, scalar_report = _rewards(out, settings, train, held)
    judges = {arm: makers[arm]() for arm in ARMS}  # every arm's reward on every generator's held-out images
    steps = rl_steps(out, base, makers, rl_prompts, settings)
    results: dict[str, Any] = {
        "settings": asdict(settings) | {"generator": str(base)},
        "steps": steps,
        "scalar_reward_model": {"held_out_pair_accuracy": scalar_report["held_out_pair_accuracy"]},
        "base": cached_json(
            out / "base.json", lambda: judge_generator(base, None, eval_prompts, settings, "base", out, judges)
        ),
        "arms": {},
    }
    for seed in settings.seeds:
        for arm in ARMS:
            name = f"{arm}-seed{seed}"

            def run_arm(arm: str = arm, seed: int = seed, name: str = name) -> dict[str, object]:
                log.info("hacking.arm", arm=arm, seed=seed, steps=steps)
                arm_started = time.perf_counter()
                history = rl_arm(out / "rl" / name, base, makers[arm](), rl_prompts, settings, seed, steps)
                lora = out / "rl" / name / "lora"
                return {
                    "arm": arm,
                    "seed": seed,
                    "minutes": round((time.perf_counter() - arm_started) / 60, 2),
                    "rl_seconds": round(sum(float(row.get("seconds") or 0.0) for row in history), 1),
                    **summarize_history(history),
                    "held_out": judge_generator(base, lora, eval_prompts, settings, name, out, judges),
                }

            results["arms"][name] = cached_json(out / "rl" / name / "arm.json", run_arm)
    results["by_arm"] = by_arm(results)
    results["rewards_on_held_out"] = {"base": results["base"]["rewards"]} | {
        name: run["held_out"]["rewards"] for name, run in results["arms"].items()
    }
    results["test_time"] = gcr_comparison(out, base, eval_prompts, settings, results)
    results["seconds"] = round(time.perf_counter() - started, 1)
    plot_curves(results, out / "curves.png")
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "report.md").write_text(report_markdown(results))
    return results


def rl_steps(out: Path, base: Path, makers: dict[str, Any], prompts: list[str], settings: HackingSettings) -> int:
    """RL steps per arm and seed: `settings.steps`, or what `budget_minutes` buys at the first run's mean step time
    (measured on `probe_steps` steps of that run, which later resumes from them)."""
    if settings.budget_minutes is None:
        return settings.steps
    budget = settings.budget_minutes

    def probe() -> dict[str, object]:
        arm, seed = ARMS[0], settings.seeds[0]
        history = rl_arm(
            out / "rl" / f"{arm}-seed{seed}", base, makers[arm](), prompts, settings, seed, settings.probe_steps
        )
        # Steps that ran the evaluation cost more; the budget, like the PARROT ablation's, counts training only.
        plain = [float(row["seconds"]) for row in history if row.get("eval_reward") is None] or [
            float(row["seconds"]) for row in history
        ]
        seconds = statistics.fmean(plain)
        steps = max(settings.probe_steps, int(budget * 60 / seconds))
        return {"probe_steps": len(history), "seconds_per_step": round(seconds, 2), "steps": steps}

    figures = cached_json(out / "budget.json", probe)
    log.info("hacking.budget", minutes=budget, **figures)
    return int(figures["steps"])


def by_arm(results: dict[str, Any]) -> dict[str, object]:
    """Per arm, over seeds: mean and spread of held-out accuracy, count accuracy, mean count drawn, alarms fired."""
    table: dict[str, object] = {}
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
    runs: dict[str, tuple[str, Path | None, str]] = {
        f"GCR {preset} on the base generator": (f"base-{preset}", None, preset) for preset in settings.gcr_presets
    }
    best = max(results["arms"], key=lambda name: results["arms"][name]["held_out"]["accuracy"])
    first = settings.gcr_presets[0]
    runs[f"GCR {first} on {best}"] = (f"best-{first}", out / "rl" / best / "lora", first)
    table: dict[str, object] = {}
    for name, (folder, lora, preset) in runs.items():
        table[name] = gcr_with_pixel_critic(out / "gcr" / folder, base, lora, suite, preset, settings)
    return table


def _ci(figures: dict[str, Any], key: str) -> str:
    bounds = figures.get(f"{key}_ci95")
    value = figures.get(key)
    if value is None:
        return "-"
    return f"{value:.3f}" + (f" [{bounds[0]:.3f}, {bounds[1]:.3f}]" if bounds else "")


def report_markdown(results: dict[str, Any]) -> str:
    s = results["settings"]
    budget = (
        f"a {s['budget_minutes']}-minute RL budget per run, which bought {results['steps']} steps at the first run's "
        "step time"
        if s.get("budget_minutes")
        else f"{results['steps']} steps per run"
    )
    lines = [
        "# Reward hacking in miniature",
        "",
        f"Generator `{s['generator']}`; DiffusionNFT with {budget}, group {s['group_size']} x "
        f"{s['prompts_per_step']} prompts, LoRA rank {s['lora_rank']}, learning rate {s['learning_rate']}, "
        f"{s['sample_steps']} sampling steps, guidance {s['guidance_scale']}; seeds {list(s['seeds'])}. "
        f"Held out: {s['eval_prompts']} prompts (colour-class pairs never trained on) x {s['eval_seeds']} seeds, judged "
        "by the pixel perception; brackets are 95% bootstrap intervals over images. The learned scalar reward's "
        f"held-out pair accuracy: {results['scalar_reward_model']['held_out_pair_accuracy']:.3f}.",
        "",
        "## Per arm (mean ± sd over seeds)",
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
    lines += [
        "",
        "## Per run",
        "",
        "| run | accuracy | colour | count | count by count asked (1/2/3/4) | mean count drawn | foreground | "
        "train reward first -> last | alarm at steps | RL minutes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, run in [("base", {"held_out": base}), *results["arms"].items()]:
        held = run["held_out"]
        by_count = "/".join(f"{v:.2f}" for v in held["count_accuracy_by_count"].values())
        rewards = [r for _, r in run.get("train_reward", []) if r is not None]
        trend = f"{rewards[0]:.3f} -> {rewards[-1]:.3f}" if rewards else "-"
        lines.append(
            f"| {name} | {_ci(held, 'accuracy')} | {_ci(held, 'color_accuracy')} | {_ci(held, 'count_accuracy')} | "
            f"{by_count} | {held['mean_count_drawn']:.2f} | {held['foreground_share']:.3f} | {trend} | "
            f"{run.get('alarm_steps') or '-'} | {run.get('minutes', '-')} |"
        )
    proxies = results.get("rewards_on_held_out") or {}
    if proxies:
        lines += [
            "",
            "## Each reward on the same held-out images",
            "",
            "Mean reward (0-1) that each arm's reward model gives the held-out images each generator drew (mean over "
            "seeds), beside the ground truth. Reward hacking: an arm's own reward up from the base while accuracy "
            "falls.",
            "",
            "| generator | accuracy (ground truth) | " + " | ".join(f"{arm} reward" for arm in ARMS) + " |",
            "|---|---|" + "---|" * len(ARMS),
        ]
        groups: dict[str, list[str]] = {"base": ["base"]}
        for name, run in results["arms"].items():
            groups.setdefault(f"RL {run['arm']}", []).append(name)
        for label, names in groups.items():
            truth = [
                (results["base"] if name == "base" else results["arms"][name]["held_out"])["accuracy"] for name in names
            ]
            cells = []
            for arm in ARMS:
                values = [proxies[name][arm] for name in names if proxies.get(name, {}).get(arm) is not None]
                cells.append(f"{statistics.fmean(values):.3f}" if values else "-")
            lines.append(f"| {label} | {statistics.fmean(truth):.3f} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Test time vs training time",
        "",
        f"The first {s['gcr_prompts']} held-out prompts, one seed each; brackets are 95% bootstrap intervals over "
        "prompts.",
        "",
        "| run | single shot | after GCR | critique calls | generations |",
        "|---|---|---|---|---|",
    ]
    for name, row in results["test_time"].items():
        lines.append(
            f"| {name} | {_ci(row, 'accuracy_initial')} | {_ci(row, 'accuracy_final')} | {row['critique_calls']} | "
            f"{row.get('generations', '-')} |"
        )
    lines += [
        "",
        "`curves.png`: each arm's own training reward per step (thin: seeds; thick: their mean) beside the pixel "
        "critic's reward on the RL evaluation prompts; `sheet_*.png`: held-out images before and after RL.",
    ]
    return "\n".join(lines) + "\n"


def plot_curves(results: dict[str, Any], path: Path) -> Path:
    """One panel per arm: its own reward over RL steps (left axis) and the pixel critic's evaluation reward (right
    axis), the quantities whose divergence is reward hacking."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = [arm for arm in ARMS if any(r["arm"] == arm for r in results["arms"].values())]
    figure, axes = plt.subplots(1, len(arms), figsize=(4.2 * len(arms), 3.4), squeeze=False)
    for axis, arm in zip(axes[0], arms, strict=True):
        runs = [r for r in results["arms"].values() if r["arm"] == arm]
        twin = axis.twinx()
        own: dict[int, list[float]] = {}
        critic: dict[int, list[float]] = {}
        for run in runs:
            steps = [(step, value) for step, value in run["train_reward"] if value is not None]
            if steps:
                axis.plot(*zip(*steps, strict=True), color="tab:blue", alpha=0.3, linewidth=0.8)
            for step, value in steps:
                own.setdefault(step, []).append(value)
            for step, value in run["eval_reward"]:
                critic.setdefault(step, []).append(value)
        if own:
            xs = sorted(own)
            axis.plot(xs, [statistics.fmean(own[x]) for x in xs], color="tab:blue", linewidth=2, label="own reward")
        if critic:
            xs = sorted(critic)
            twin.plot(
                xs, [statistics.fmean(critic[x]) for x in xs], color="tab:orange", marker="o", label="pixel critic"
            )
        axis.set_title(f"{arm} ({len(runs)} seeds)")
        axis.set_xlabel("RL step")
        axis.set_ylabel("own training reward", color="tab:blue")
        twin.set_ylabel("pixel critic (eval prompts)", color="tab:orange")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def copy_to_docs(out: Path, docs: Path) -> None:
    """The report, its curves and the contact sheets (base and each arm's first seed), into the docs folder."""
    import shutil

    docs.mkdir(parents=True, exist_ok=True)
    text = (out / "report.md").read_text().replace("`curves.png`", "`reward_hacking_curves.png`")
    shutil.copy2(out / "curves.png", docs / "reward_hacking_curves.png")
    first_seed = json.loads((out / "results.json").read_text())["settings"]["seeds"][0]
    for sheet in sorted(out.glob("sheet_*.png")):
        if sheet.stem == "sheet_base" or sheet.stem.endswith(f"-seed{first_seed}"):
            shutil.copy2(sheet, docs / f"reward_hacking_{sheet.stem}.png")
    (docs / "reward_hacking_results.md").write_text(text)


__all__ = ["ARMS", "HackingSettings", "copy_to_docs", "run_reward_hacking"]
