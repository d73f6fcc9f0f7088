"""The 32-pixel sketch generator (issue 17, item 1): a diffusers pipeline our code trains, saved and loaded like any
other, drawing each image from its own seed, driven by GCR and the RL trainers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import run_cli
from rationalrewards.agents.diffusers_generator import DiffusersGenerator, load_pipeline
from rationalrewards.experiments.sketch_generator import (
    GeneratorSettings,
    judge_images,
    train_sketch_generator,
    vocabulary,
)
from rationalrewards.sketch.flow import SketchFlowPipeline, build_sketch_flow_pipeline, build_word_tokenizer
from rationalrewards.sketch.small_world import SmallPrompt
from rationalrewards.training.flow_policy import SketchFlowPolicy, policy_for


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh (untrained) pipeline saved as a diffusers directory: the mechanics, not the pictures."""
    directory = tmp_path_factory.mktemp("sketch-flow") / "pipeline"
    build_sketch_flow_pipeline(vocabulary(), seed=0).save_pretrained(directory, safe_serialization=True)
    return directory


def test_word_tokenizer_reads_every_small_world_word_and_marks_others_unknown() -> None:
    tokenizer = build_word_tokenizer(vocabulary())
    ids = tokenizer("an image of exactly 3 cars colored red, clean and sharp").input_ids
    assert tokenizer.unk_token_id not in ids
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.unk_token_id in tokenizer("a photo of a zebra").input_ids


def test_pipeline_saves_as_safetensors_and_loads_through_the_generator_loader(pipeline_dir: Path) -> None:
    index = json.loads((pipeline_dir / "model_index.json").read_text())
    assert index["_class_name"] == "SketchFlowPipeline"
    assert list(pipeline_dir.rglob("*.safetensors")) and not list(pipeline_dir.rglob("*.bin"))
    pipe = load_pipeline(pipeline_dir)
    assert isinstance(pipe, SketchFlowPipeline)
    [image] = pipe("a photo of two red cars", num_inference_steps=2, generator=torch.Generator().manual_seed(0)).images
    assert image.size == (32, 32)
    with pytest.raises(ValueError, match="32x32"):
        pipe("a photo of a red car", height=64, width=64, num_inference_steps=1)


def test_an_image_does_not_depend_on_the_batch_it_is_drawn_in(pipeline_dir: Path) -> None:
    pipe = load_pipeline(pipeline_dir)
    prompts = [f"a photo of {n} blue boats" for n in ("two", "three", "four")] * 3 + ["a photo of a red car"]
    seeds = list(range(len(prompts)))
    alone = pipe(prompts[4], num_inference_steps=3, generator=torch.Generator().manual_seed(seeds[4]), output_type="pt")
    batch = pipe(
        prompts,
        num_inference_steps=3,
        generator=[torch.Generator().manual_seed(s) for s in seeds],
        output_type="pt",
    )
    torch.testing.assert_close(alone.images[0], batch.images[4], atol=1e-4, rtol=1e-4)


def test_diffusers_generator_draws_with_the_sketch_pipeline(pipeline_dir: Path, tmp_path: Path) -> None:
    generator = DiffusersGenerator(pipeline_dir, tmp_path, steps=2, guidance_scale=2.0)
    assert not generator.edits
    images = asyncio.run(generator.generate(["a photo of three green buses", "a photo of a white boat"], [1, 2]))
    assert [Path(i.image.uri.removeprefix("file://")).is_file() for i in images] == [True, True]


def test_rl_policy_adapter_drives_the_unet(pipeline_dir: Path) -> None:
    pipe = load_pipeline(pipeline_dir)
    policy = policy_for(pipe, resolution=512, guidance_scale=3.0, max_sequence_length=24)
    assert isinstance(policy, SketchFlowPolicy) and policy.resolution == 32
    cond = policy.encode(["a photo of a red car", "a photo of two blue boats"], [None, None])
    assert set(cond.tensors) == {"embeds", "negative"}
    noise = policy.initial_noise(2, torch.Generator().manual_seed(0))
    sigma = torch.full((2,), 0.5)
    assert policy.velocity(noise, sigma, cond).shape == noise.shape
    assert [i.size for i in policy.decode(noise)] == [(32, 32)] * 2
    with pytest.raises(ValueError, match="does not edit"):
        policy.encode(["make it blue"], ["file:///nowhere.png"])  # type: ignore[list-item]


def test_judge_images_reads_colour_and_count_from_pixels() -> None:
    from rationalrewards.sketch.small_world import render_small, small_scene

    prompts = [SmallPrompt("red", "car", 3), SmallPrompt("blue", "boat", 2)]
    right = render_small(small_scene(prompts[0], 0))
    wrong_count = render_small(small_scene(SmallPrompt("blue", "boat", 3), 0))
    figures = judge_images(prompts, [right, wrong_count])
    assert figures["color_accuracy"] == 1.0
    assert figures["count_accuracy"] == 0.5
    assert figures["mean_count_drawn"] == 3.0
    assert figures["count_accuracy_by_count"] == {"2": 0.0, "3": 1.0}


def test_settings_refuse_bad_values() -> None:
    with pytest.raises(ValueError, match="budget"):
        GeneratorSettings(budget_minutes=0)
    with pytest.raises(ValueError, match="explicit_share"):
        GeneratorSettings(explicit_share=1.5)


@pytest.mark.slow
def test_training_smoke_run_exports_a_loadable_pipeline_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    report = train_sketch_generator(out, GeneratorSettings.smoke())
    assert report["steps"] == 3 and report["evaluation"]["held_out"]["images"] == 8
    assert (report["pipeline"], report["sheet"]) == ("pipeline", "held_out_sheet.png")  # relative: it travels
    assert (out / "held_out_sheet.png").is_file() and (out / "train_state.pt").is_file()
    assert isinstance(load_pipeline(out / "pipeline"), SketchFlowPipeline)
    split = json.loads((out / "pipeline" / "small_world_split.json").read_text())
    assert len(split["held_out"]) == 16
    again = train_sketch_generator(out, GeneratorSettings.smoke(max_steps=5))  # resumes at step 3, trains 2 more
    assert again["steps"] == 5
    assert again["loss_curve"][0] == report["loss_curve"][0]


@pytest.mark.slow
def test_cli_smoke_prints_json(tmp_path: Path) -> None:
    result = run_cli(
        "experiment", "train-sketch-generator", "--out", str(tmp_path / "g"), "--smoke", "--json", check=True
    )
    data = json.loads(result.stdout)
    assert set(data["evaluation"]) == {"held_out", "train"}
    assert np.isfinite(data["loss_curve"][-1][1])


@pytest.mark.slow
def test_rl_trains_a_lora_on_the_sketch_pipeline_that_gcr_then_loads(pipeline_dir: Path, tmp_path: Path) -> None:
    """DiffusionNFT on the sketch pipeline: LoRA on the UNet's attention only (the default targets find its `attn1`
    and `attn2` projections), saved with its rank and alpha, read back by the pipeline's own loader, and used by
    `refine --lora` with the pixel critic. The untrained pipeline draws noise, which every critic scores alike, so the
    reward here is a pixel statistic that varies: how red the image is."""
    from rationalrewards.rewardmodel.backends.function import FunctionRewardModel
    from rationalrewards.rewardmodel.images import load_pil
    from rationalrewards.training import NFTConfig, NFTTrainer

    def redness(request):  # type: ignore[no-untyped-def]
        red = float(np.asarray(load_pil(request.image))[:, :, 0].mean()) / 255
        return {"text_faithfulness": 1 + 3 * red, "physical_quality": 1 + 3 * red, "text_rendering": None}

    config = NFTConfig(
        pipeline=str(pipeline_dir),
        group_size=4,
        prompts_per_step=2,
        sample_steps=3,
        guidance_scale=2.0,
        lora_rank=4,
        lora_alpha=8,
        learning_rate=1e-2,
        train_batch_size=8,
        max_steps=2,
        eval_every=0,
        save_every=1000,
        report_to="none",
        ban_solved=False,
    )
    prompts = ["a photo of two red cars", "a photo of three blue boats"]
    trainer = NFTTrainer(config, FunctionRewardModel(redness, name="redness"), prompts, out=tmp_path / "rl")
    base = {n: p.detach().clone() for n, p in trainer.transformer.named_parameters() if "lora_" not in n}
    history = trainer.train()
    assert [row["step"] for row in history] == [1, 2]
    assert all(torch.equal(p, base[n]) for n, p in trainer.transformer.named_parameters() if "lora_" not in n)
    fresh = load_pipeline(pipeline_dir)
    call = dict(num_inference_steps=3, guidance_scale=2.0, output_type="pt")
    before = fresh(prompts[0], generator=torch.Generator().manual_seed(1), **call).images
    fresh.load_lora_weights(tmp_path / "rl" / "lora")
    assert fresh.unet.peft_config["default"].lora_alpha == 8  # alpha travelled with the weights
    after = fresh(prompts[0], generator=torch.Generator().manual_seed(1), **call).images
    assert float((after - before).abs().max()) > 1e-4
    refined = run_cli(
        "refine", prompts[0], "--generator", str(pipeline_dir), "--lora", str(tmp_path / "rl" / "lora"),
        "--critic", "sketch-pixels", "--grader", "none", "--out", str(tmp_path / "gcr"), "--json",
    )  # fmt: skip
    assert refined.returncode == 0, refined.stderr[-2000:]
    assert json.loads(refined.stdout)["finished"] == 1


@pytest.mark.slow
def test_reward_hacking_smoke_runs_every_stage_and_a_rerun_reuses_them(tmp_path: Path) -> None:
    """From the shipped generator checkpoint (no --generator), every stage in minutes."""
    from rationalrewards.experiments.reward_hacking import (
        ARMS,
        HackingSettings,
        copy_to_docs,
        run_reward_hacking,
    )

    out = tmp_path / "hack"
    settings = HackingSettings.smoke(budget_minutes=0.02)
    results = run_reward_hacking(out, settings)
    # The budget was turned into steps by the first run's probe, and every run took exactly that many.
    budget = json.loads((out / "budget.json").read_text())
    assert results["steps"] == budget["steps"] >= settings.probe_steps
    assert set(results["by_arm"]) == set(ARMS)
    for run in results["arms"].values():
        assert [step for step, _ in run["train_reward"]] == list(range(1, results["steps"] + 1))
        held = run["held_out"]
        assert 0.0 <= held["accuracy"] <= 1.0
        low, high = held["accuracy_ci95"]
        assert low <= held["accuracy"] <= high
    assert len(results["test_time"]) == 2
    report = (out / "report.md").read_text()
    assert "RL critique" in report and "GCR paper on the base generator" in report and "## Per run" in report
    assert (out / "curves.png").stat().st_size > 0
    proxies = results["rewards_on_held_out"]
    assert set(proxies) == {"base", *results["arms"]} and all(set(row) == set(ARMS) for row in proxies.values())
    assert "## Each reward on the same held-out images" in report
    assert results["settings"]["generator"].endswith("sketch-flow")  # the shipped checkpoint

    # A rerun with the same settings reuses every finished stage; other settings are refused.
    stamps = {path: path.stat().st_mtime_ns for path in out.glob("rl/*/arm.json")}
    assert len(stamps) == len(ARMS)
    rerun = run_cli("experiment", "reward-hacking", "--out", str(out), "--smoke", "--budget-minutes", "0.02", "--json")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    again = json.loads(rerun.stdout)  # the command line continues the run the function started
    assert again["arms"] == results["arms"] and again["steps"] == results["steps"]
    assert {path: path.stat().st_mtime_ns for path in out.glob("rl/*/arm.json")} == stamps
    with pytest.raises(ValueError, match="other settings"):
        run_reward_hacking(out, HackingSettings.smoke(steps=3))

    docs = tmp_path / "docs"
    copy_to_docs(out, docs)
    assert (docs / "reward_hacking_curves.png").is_file() and (docs / "reward_hacking_sheet_base.png").is_file()
    assert "reward_hacking_curves.png" in (docs / "reward_hacking_results.md").read_text()


def test_reward_hacking_settings_refuse_bad_values() -> None:
    from rationalrewards.experiments.reward_hacking import HackingSettings

    for bad in ({"budget_minutes": 0}, {"seeds": (1, 1)}, {"seeds": ()}, {"steps": 0}, {"probe_steps": 0}):
        with pytest.raises(ValueError):
            HackingSettings(**bad)  # type: ignore[arg-type]


def test_reward_hacking_cli_refuses_seeds_and_seed_together_and_documents_its_budget(tmp_path: Path) -> None:
    both = run_cli("experiment", "reward-hacking", "--out", str(tmp_path / "x"), "--seeds", "2", "--seed", "1")
    assert both.returncode != 0
    assert "--seeds" in both.stderr + both.stdout
    assert not (tmp_path / "x").exists()
    helped = run_cli("experiment", "reward-hacking", "--help", check=True)
    for flag in ("--budget-minutes", "--seeds", "--seed", "--steps", "--docs", "--generator"):
        assert flag in helped.stdout


def test_the_shipped_generator_draws_held_out_prompts_as_asked() -> None:
    """The checkpoint in the package (trained by `experiment train-sketch-generator`, 30 minutes): colour-class pairs
    it never saw in training, read back by the pixel perception."""
    from rationalrewards.experiments.reward_hacking import held_out_set
    from rationalrewards.experiments.sketch_generator import evaluate_generator
    from rationalrewards.sketch.small_world import split_prompts
    from rationalrewards.sketch.world import shipped_flow_pipeline

    pipe = load_pipeline(shipped_flow_pipeline())
    assert isinstance(pipe, SketchFlowPipeline)
    prompts = held_out_set(split_prompts()[1], 16)
    figures, images = evaluate_generator(pipe, prompts, seeds=2, steps=20, guidance_scale=3.0)
    assert images[0].size == (32, 32)
    assert figures["color_accuracy"] >= 0.9 and figures["count_accuracy"] >= 0.8, figures
