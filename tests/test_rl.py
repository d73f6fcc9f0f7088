"""Diffusion RL (issue 13): DiffusionNFT and Flow-GRPO on tiny flow-matching pipelines built from config, with a
reward read from the images' pixels; abstentions masked; editing groups keyed by source image; LoRA saved in diffusers'
format and loaded by diffusers' own loader; kill and resume; the hacking alarm; the CLI."""

from __future__ import annotations

import itertools
import json
import os
import signal
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from helpers import PYTHON, run_cli

torch = pytest.importorskip("torch")

PROMPTS = ["a red car", "two dogs", "a cat", "a blue clock"]
# LoRA on the attention projections and the output projection: a random tiny VAE decodes most latent changes to the
# same grey, and a global shift of the velocity is what moves the mean grey level the test reward reads.
TARGETS = "attn.to_q,attn.to_k,attn.to_v,attn.to_out.0,attn.add_q_proj,attn.add_k_proj,attn.add_v_proj,proj_out"


def _config(algo: str, **overrides: Any) -> Any:
    from rationalrewards.training import GRPOConfig, NFTConfig

    values: dict[str, Any] = dict(
        tiny=True,
        resolution=32,
        max_sequence_length=16,
        group_size=8,
        prompts_per_step=2,
        sample_steps=4,
        guidance_scale=1.0,
        lora_rank=4,
        lora_alpha=8,
        lora_targets=TARGETS,
        train_batch_size=16,
        eval_every=0,
        save_every=1000,
        report_to="none",
        ban_solved=False,
    )
    return (NFTConfig if algo == "nft" else GRPOConfig)(**(values | overrides))


def _reward(name: str) -> Any:
    import rl_rewards
    from rationalrewards.rewardmodel.backends.function import FunctionRewardModel

    return FunctionRewardModel(getattr(rl_rewards, name), name=name)


@pytest.fixture(scope="module")
def sd3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rationalrewards.training.tiny_flow import save_tiny_flow_pipeline

    return save_tiny_flow_pipeline(tmp_path_factory.mktemp("sd3") / "pipe", "sd3", seed=0)


def test_advantages_mask_abstentions_and_keep_edit_groups_apart() -> None:
    from rationalrewards.training._rl_advantages import nft_weights, step_advantages

    keys = [("make it red", "sha-a")] * 3 + [("make it red", "sha-b")] * 3
    rewards = [0.2, 0.4, None, 0.9, 0.7, 0.8]
    result = step_advantages(rewards, keys, ban_solved=False)
    assert result.groups == 2  # same instruction, different source images: two groups
    assert result.mask == [True, True, False, True, True, True]
    assert result.abstained == 1 and result.advantages[2] == 0.0
    # Each group is centred on its own mean (0.3 and 0.8), not on a shared one, and the abstention is not a 0.0 in it.
    assert result.advantages[0] < 0 < result.advantages[1]
    assert result.advantages[3] > 0 > result.advantages[4] and abs(result.advantages[5]) < 1e-9
    merged = step_advantages(rewards, [("make it red", None)] * 6, ban_solved=False)
    # Keyed by the instruction alone (the release's grouping), 0.7 would sit above the shared mean and be reinforced.
    assert merged.groups == 1 and merged.advantages[4] > 0
    # A solved group (std < 0.05, mean > 0.9) is banned and masked; a group with one scored sample has no baseline.
    solved = step_advantages([0.95, 0.96, 0.95, 0.1, None, None], keys)
    assert solved.solved == [("make it red", "sha-a")] and solved.mask == [False] * 6
    assert solved.groups_without_baseline == 1
    # Per-aspect advantages average only the aspects a sample was scored on.
    aspects = {"text_faithfulness": [0.1, 0.9, 0.5, 0.5, 0.5, 0.5], "text_rendering": [None] * 6}
    by_aspect = step_advantages([0.1, 0.9, 0.5, 0.5, 0.5, 0.5], keys, aspects=aspects, ban_solved=False)
    assert by_aspect.advantages[0] < 0 < by_aspect.advantages[1]
    assert nft_weights([-5.0, 0.0, 5.0, 12.0], 5.0) == [0.0, 0.5, 1.0, 1.0]


def test_hacking_alarm_fires_when_train_reward_rises_and_eval_or_an_aspect_falls() -> None:
    from rationalrewards.training._rl_monitor import HackingAlarm

    alarm = HackingAlarm(window=2)
    assert alarm.update(0.40, 0.50, {"text_faithfulness": 0.5}) is None
    assert alarm.update(0.45, 0.52, {"text_faithfulness": 0.5}) is None
    assert alarm.update(0.50, 0.55, {"text_faithfulness": 0.55}) is None  # both rise: no alarm
    assert alarm.update(0.60, 0.53, {"text_faithfulness": 0.56}) is None  # eval 0.52 -> 0.53 over the window
    message = alarm.update(0.70, 0.45, {"text_faithfulness": 0.40})
    assert message is not None and "eval 0.550 -> 0.450" in message and "text_faithfulness" in message
    quiet = HackingAlarm(window=1)
    quiet.update(0.4, None, {"physical_quality": 0.6})
    assert "physical_quality" in (quiet.update(0.5, None, {"physical_quality": 0.5}) or "")


@pytest.mark.slow
@pytest.mark.parametrize(("algo", "learning_rate", "kl_beta"), [("nft", 3e-2, 1e-4), ("grpo", 3e-2, 0.0)])
def test_rl_raises_a_pixel_reward_and_trains_only_the_lora(
    algo: str, learning_rate: float, kl_beta: float, sd3_dir: Path, tmp_path: Path
) -> None:
    from rationalrewards.agents.diffusers_generator import load_pipeline
    from rationalrewards.training import GRPOTrainer, NFTTrainer

    config = _config(
        algo, pipeline=str(sd3_dir), tiny=False, learning_rate=learning_rate, kl_beta=kl_beta, max_steps=36
    )
    trainer = (NFTTrainer if algo == "nft" else GRPOTrainer)(config, _reward("darkness"), PROMPTS, out=tmp_path / "run")
    base = {n: p.detach().clone() for n, p in trainer.transformer.named_parameters() if "lora_" not in n}
    history = trainer.train()
    assert [row["step"] for row in history] == list(range(1, 37))
    assert [json.loads(line)["step"] for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()] == list(
        range(1, 37)
    )
    rewards = [row["reward_mean"] for row in history]
    # Step-to-step noise: the spread of successive differences (a trend shifts their mean, not their spread).
    noise = statistics.pstdev([b - a for a, b in itertools.pairwise(rewards)]) / 2**0.5
    gain = statistics.fmean(rewards[-6:]) - statistics.fmean(rewards[:6])
    assert gain > max(4 * noise, 0.05), (gain, noise, rewards)
    assert {"reward_std", "abstained", "reward_text_faithfulness", "reward_physical_quality"} <= set(history[-1])
    for name, parameter in trainer.transformer.named_parameters():
        if "lora_" not in name:
            assert torch.equal(parameter, base[name]), f"{name} changed: only the LoRA may train"
    # The saved LoRA loads into a fresh pipeline with diffusers' own loader and changes what it draws.
    fresh = load_pipeline(sd3_dir)
    call = dict(
        num_inference_steps=4, guidance_scale=1.0, height=32, width=32, max_sequence_length=16, output_type="np"
    )
    before = fresh("a red car", generator=torch.Generator().manual_seed(3), **call).images
    fresh.load_lora_weights(tmp_path / "run" / "lora")
    after = fresh("a red car", generator=torch.Generator().manual_seed(3), **call).images
    assert abs(float(after.mean()) - float(before.mean())) > 1e-3
    if algo == "nft":  # the trained LoRA plugs into Generate-Critique-Refine as the generator's
        refined = run_cli(
            "refine", "a red car", "--generator", str(sd3_dir), "--lora", str(tmp_path / "run" / "lora"),
            "--critic", "fake", "--grader", "none", "--out", str(tmp_path / "gcr"), "--json",
        )  # fmt: skip
        assert refined.returncode == 0, refined.stderr[-2000:]
        manifest = json.loads((tmp_path / "gcr" / "run.json").read_text())
        assert manifest["settings"]["generator_lora"] == str(tmp_path / "run" / "lora")


@pytest.mark.slow
def test_abstentions_are_masked_not_scored_zero_and_too_many_stop_the_run(tmp_path: Path) -> None:
    from rationalrewards.training import NFTTrainer
    from rationalrewards.training.rl_trainer import AbstentionShareError

    trainer = NFTTrainer(_config("nft", max_steps=2), _reward("sometimes_abstains"), PROMPTS, out=tmp_path / "some")
    history = trainer.train()
    last = trainer.last_step
    abstained = [reward is None for reward in last["rewards"]]
    assert any(abstained) and history[-1]["abstained"] == sum(abstained)
    for skipped, kept, weight in zip(abstained, last["mask"], last["loss_weights"], strict=True):
        if skipped:
            assert not kept and weight == 0.0  # out of the loss, not a worst score inside it
    assert history[-1]["trained_samples"] == sum(last["mask"]) > 0
    stopped = NFTTrainer(_config("nft", max_steps=2), _reward("always_abstains"), PROMPTS, out=tmp_path / "none")
    with pytest.raises(AbstentionShareError, match="16 of 16 samples abstained"):
        stopped.train()


@pytest.mark.slow
def test_editing_groups_with_the_same_instruction_stay_apart(tmp_path: Path) -> None:
    from PIL import Image

    from rationalrewards.rewardmodel.images import image_ref_from_pil
    from rationalrewards.training import NFTTrainer, PromptItem

    sources = [image_ref_from_pil(Image.new("RGB", (32, 32), color)) for color in ((200, 20, 20), (20, 20, 200))]
    items = [PromptItem("make it darker", source) for source in sources]
    config = _config("nft", tiny_family="flux_kontext", group_size=3, max_steps=1, eval_every=1, eval_prompts=2)
    trainer = NFTTrainer(config, _reward("darkness"), items, out=tmp_path / "edit")
    history = trainer.train()
    keys = trainer.last_step["keys"]
    assert len(set(keys)) == 2 and {key[1] for key in keys} == {s.sha256 for s in sources}
    assert "reward_image_faithfulness" in history[-1]
    assert Path(history[-1]["eval_grid"]).is_file()


def _rl_command(out: Path, prompts: Path, steps: int) -> list[str]:
    return [
        PYTHON, "-m", "rationalrewards.cli.main", "rl", "--algo", "grpo", "--tiny", "--prompts", str(prompts),
        "--critic", "py:tests.rl_rewards:darkness", "--out", str(out), "--max-steps", str(steps),
        "--save-every", "2", "--group-size", "4", "--prompts-per-step", "2", "--sample-steps", "3",
        "--max-sequence-length", "16", "--lora-rank", "4", "--lora-alpha", "8", "--guidance-scale", "1.0",
        "--learning-rate", "1e-2", "--eval-every", "3", "--eval-prompts", "2", "--json",
    ]  # fmt: skip


@pytest.mark.slow
def test_a_killed_run_resumes_and_continues_the_history(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    whole = subprocess.run(_rl_command(tmp_path / "whole", prompts, 6), capture_output=True, text=True, env=env)
    assert whole.returncode == 0, whole.stderr[-2000:]
    summary = json.loads(whole.stdout)
    assert summary["steps"] == 6 and Path(summary["lora"]).is_dir()
    assert (tmp_path / "whole" / "samples" / "step-000006.png").is_file()
    assert any((tmp_path / "whole" / "tensorboard").iterdir())

    killed = subprocess.Popen(
        _rl_command(tmp_path / "killed", prompts, 6), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    checkpoint = tmp_path / "killed" / "checkpoints" / "step-000004"
    deadline = time.monotonic() + 240
    while not checkpoint.is_dir() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert checkpoint.is_dir(), "no checkpoint before the kill"
    resumed = subprocess.run(_rl_command(tmp_path / "killed", prompts, 6), capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "killed" / "history.jsonl").read_text().splitlines()]
    expected = [json.loads(line) for line in (tmp_path / "whole" / "history.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(1, 7))
    for got, want in zip(rows, expected, strict=True):  # the same steps, the same numbers: seeded by (seed, step)
        assert got["reward_mean"] == pytest.approx(want["reward_mean"], abs=1e-5)


def test_cli_help_and_bad_input(tmp_path: Path) -> None:
    help_text = run_cli("rl", "--help", check=True, env={"COLUMNS": "200"}).stdout
    for flag in (
        "--algo",
        "nft|grpo",
        "--group-size",
        "--nft-beta",
        "--clip-range",
        "--ban-std",
        "--max-abstention-share",
    ):
        assert flag in help_text
    missing = run_cli("rl", "--tiny", "--critic", "fake", "--out", str(tmp_path / "o"))
    assert missing.returncode == 2 and "--prompts" in missing.stderr
    prompts = tmp_path / "p.txt"
    prompts.write_text("a cat\n")
    bad_algo = run_cli("rl", "--algo", "ppo", "--tiny", "--prompts", str(prompts), "--critic", "fake", "--out", "o")
    assert bad_algo.returncode == 2 and "'ppo' is not one of 'nft', 'grpo'" in bad_algo.stderr
    foreign = run_cli(
        "rl", "--tiny", "--prompts", str(prompts), "--critic", "fake", "--out", "o", "--clip-range", "0.1"
    )
    assert foreign.returncode == 2 and "--clip-range is a knob of --algo grpo, not nft" in foreign.stderr
    bad_group = run_cli(
        "rl", "--tiny", "--group-size", "1", "--prompts", str(prompts), "--critic", "fake", "--out", str(tmp_path / "g")
    )
    assert bad_group.returncode == 2 and "group_size" in bad_group.stderr
    no_policy = run_cli("rl", "--prompts", str(prompts), "--critic", "fake", "--out", str(tmp_path / "n"))
    assert no_policy.returncode == 2 and "--pipeline DIR" in no_policy.stderr


@pytest.mark.slow
def test_gloo_data_parallel_over_two_processes(tmp_path: Path) -> None:
    """torchrun with 2 CPU processes: each samples its share of the prompt groups, the history holds the whole
    step, and the replicas end with the same LoRA (the trainer checks and fails otherwise)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        master_port = probe.getsockname()[1]
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(PROMPTS) + "\n")
    command = _rl_command(tmp_path / "ddp", prompts, 2)
    launcher = [PYTHON, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(master_port)]
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run(launcher + command[1:], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    [line] = [line for line in result.stdout.splitlines() if line.startswith("{")]  # the main process prints, alone
    assert json.loads(line)["world_size"] == 2
    rows = [json.loads(line) for line in (tmp_path / "ddp" / "history.jsonl").read_text().splitlines()]
    assert [row["samples"] for row in rows] == [8, 8] and all(row["world_size"] == 2 for row in rows)


def test_reward_terms_parse_and_mix_on_very_different_scales() -> None:
    from rationalrewards.training._rl_advantages import step_advantages
    from rationalrewards.training._rl_rewards import parse_reward_terms, weighted_mean

    terms = parse_reward_terms(["critique", "critique.text_rendering:0.5", "py:my_rewards:ocr:2"], ["text_rendering"])
    assert [(t.kind, t.weight) for t in terms] == [("critique", 1.0), ("aspect", 0.5), ("model", 2.0)]
    assert parse_reward_terms([])[0].spec == "critique"
    for bad in ("critique:-1", "critique.colour", "clip", "critique,critique"):
        with pytest.raises(ValueError, match="--reward"):
            parse_reward_terms(bad.split(","), ["text_rendering"])
    assert weighted_mean({"a": 1.0, "b": None}, {"a": 1.0, "b": 3.0}) == 1.0  # an abstaining term leaves the mean
    assert weighted_mean({"a": None}, {"a": 1.0}) is None
    # Two rewards that disagree, one on a scale a thousand times the other, over one group of four samples.
    small, large = [0.0, 1.0, 0.0, 1.0], [1000.0, 1000.0, 0.0, 0.0]
    keys = [("p", None)] * 4
    summed = step_advantages([(a + b) / 2 for a, b in zip(small, large, strict=True)], keys, ban_solved=False)
    assert summed.advantages[0] > 0 and summed.advantages[3] < 0  # the large reward alone decides
    normalised = step_advantages(
        [(a + b) / 2 for a, b in zip(small, large, strict=True)],
        keys,
        terms={"small": (1.0, small), "large": (1.0, large)},
        ban_solved=False,
    )
    first, both, neither, only_small = normalised.advantages
    assert both > 0 > neither and first == pytest.approx(only_small, abs=1e-3)  # each reward counts alike


def test_two_rewards_mixed_in_a_run_with_one_abstaining(tmp_path: Path) -> None:
    from rationalrewards.training import NFTTrainer

    extra = {"py:rl_rewards:sometimes_abstains": _reward("sometimes_abstains")}
    config = _config(
        "nft", max_steps=1, reward=("critique", "py:rl_rewards:sometimes_abstains:2"), reward_mix="normalised"
    )
    trainer = NFTTrainer(config, _reward("darkness"), PROMPTS, extra_rewards=extra, out=tmp_path / "mixed")
    [row] = trainer.train()
    assert row["reward_term_critique"] is not None and row["reward_term_py:rl_rewards:sometimes_abstains"] is not None
    assert 0 < row["abstained_term_py:rl_rewards:sometimes_abstains"] < row["samples"]
    assert row["abstained"] == 0  # the critic scored every sample: no sample is masked for one reward's abstention
    history = [json.loads(line) for line in (tmp_path / "mixed" / "history.jsonl").read_text().splitlines()]
    assert "reward_term_critique" in history[-1]
    with pytest.raises(ValueError, match="no reward model given"):
        NFTTrainer(config, _reward("darkness"), PROMPTS, out=tmp_path / "none")


def _gaussian_flow(mu: float, s: float) -> Any:
    """The rectified flow's exact velocity when the data is N(mu, s^2) (s = 0: a single point): its ODE carries x at
    sigma = 1 to m + sqrt(var) x, m = (1 - sigma) mu, var = (1 - sigma)^2 s^2 + sigma^2, in closed form."""

    def velocity(x: Any, sigma: Any) -> Any:
        sigma = sigma.to(x.dtype)
        var = (1 - sigma) ** 2 * s**2 + sigma**2
        return -mu + ((sigma - (1 - sigma) * s**2) / var) * (x - (1 - sigma) * mu)

    return velocity


def test_the_dpm2_sampler_is_exact_on_straight_flows_and_second_order_on_curved_ones() -> None:
    import math

    from rationalrewards.training.flow_solvers import integrate

    x1 = torch.linspace(-2, 2, 9, dtype=torch.float64)
    for sampler in ("euler", "dpm2"):  # a single data point: straight paths, both exact at any step count
        for steps in (3, 7):
            landed = integrate(
                _gaussian_flow(0.7, 0.0), x1.clone(), torch.linspace(1, 0, steps + 1, dtype=torch.float64), sampler
            )
            assert torch.allclose(landed, torch.full_like(x1, 0.7), atol=1e-9), sampler
    end, mu, s = 0.25, 0.7, 0.3
    exact = (1 - end) * mu + math.sqrt((1 - end) ** 2 * s**2 + end**2) * x1

    def error(sampler: str, steps: int) -> float:
        sigmas = torch.linspace(1, end, steps + 1, dtype=torch.float64)
        return float((integrate(_gaussian_flow(mu, s), x1.clone(), sigmas, sampler) - exact).abs().max())  # type: ignore[arg-type]

    euler = [error("euler", n) for n in (16, 32, 64)]
    dpm2 = [error("dpm2", n) for n in (16, 32, 64)]
    for coarse, fine in itertools.pairwise(euler):
        assert 1.8 < coarse / fine < 2.2  # first order: twice the steps, half the error
    for coarse, fine in itertools.pairwise(dpm2):
        assert 3.6 < coarse / fine < 4.4  # second order: a quarter
    assert dpm2[0] < euler[-1]  # 16 DPM steps beat 64 Euler steps here
    with pytest.raises(ValueError, match="unknown sampler"):
        integrate(_gaussian_flow(mu, s), x1, torch.linspace(1, 0, 3), "heun")  # type: ignore[arg-type]


def test_the_sampler_is_chosen_per_recipe(sd3_dir: Path, tmp_path: Path) -> None:
    from rationalrewards.training import NFTTrainer

    auto = NFTTrainer(
        _config("nft", pipeline=str(sd3_dir), tiny=False, max_steps=1), _reward("darkness"), PROMPTS, out=tmp_path / "a"
    )
    assert auto.sampler == "euler"  # SD3: no release recipe, the default integrator
    from rationalrewards.training.tiny_flow import build_tiny_flow_pipeline

    kontext = NFTTrainer(
        _config("nft", max_steps=1), _reward("darkness"), PROMPTS, pipeline=build_tiny_flow_pipeline("flux_kontext"),
        out=tmp_path / "k",
    )  # fmt: skip
    assert kontext.sampler == "dpm2"  # FLUX Kontext: the release's recipe samples with DPM-Solver++ (2M)
    chosen = NFTTrainer(
        _config("nft", pipeline=str(sd3_dir), tiny=False, max_steps=1, sampler="dpm2"),
        _reward("darkness"),
        PROMPTS,
        out=tmp_path / "b",
    )
    [row] = chosen.train()
    assert chosen.sampler == "dpm2" and row["reward_mean"] is not None
    assert json.loads((tmp_path / "b" / "run.json").read_text())["settings"]["sampler_used"] == "dpm2"


@pytest.fixture(scope="module")
def qwen_image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rationalrewards.training.tiny_flow import save_tiny_flow_pipeline

    return save_tiny_flow_pipeline(tmp_path_factory.mktemp("qwen") / "pipe", "qwen_image", seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["nft", "grpo"])
def test_rl_raises_a_reward_on_a_tiny_qwen_image_pipeline(algo: str, qwen_image_dir: Path, tmp_path: Path) -> None:
    """Qwen-Image (text to image) trains as the SD3 and FLUX families do: the reward rises over its step-to-step
    noise, the LoRA loads with diffusers' own loader and changes the output, and GCR runs with it."""
    from rationalrewards.agents.diffusers_generator import load_pipeline
    from rationalrewards.training import GRPOTrainer, NFTTrainer

    config = _config(algo, pipeline=str(qwen_image_dir), tiny=False, learning_rate=1e-2, kl_beta=0.0, max_steps=36)
    trainer = (NFTTrainer if algo == "nft" else GRPOTrainer)(
        config, _reward("qwen_darkness"), PROMPTS, out=tmp_path / "run"
    )
    rewards = [row["reward_mean"] for row in trainer.train()]
    noise = statistics.pstdev([b - a for a, b in itertools.pairwise(rewards)]) / 2**0.5
    gain = statistics.fmean(rewards[-6:]) - statistics.fmean(rewards[:6])
    assert gain > max(4 * noise, 0.05), (gain, noise, rewards)
    fresh = load_pipeline(qwen_image_dir)
    call = dict(num_inference_steps=4, height=32, width=32, max_sequence_length=16, output_type="np")
    before = fresh("a red car", generator=torch.Generator().manual_seed(3), **call).images
    fresh.load_lora_weights(tmp_path / "run" / "lora")
    after = fresh("a red car", generator=torch.Generator().manual_seed(3), **call).images
    assert abs(float(after.mean()) - float(before.mean())) > 1e-3
    if algo == "nft":
        refined = run_cli(
            "refine", "a red car", "--generator", str(qwen_image_dir), "--lora", str(tmp_path / "run" / "lora"),
            "--critic", "fake", "--grader", "none", "--out", str(tmp_path / "gcr"), "--json",
        )  # fmt: skip
        assert refined.returncode == 0, refined.stderr[-2000:]
        assert json.loads(refined.stdout)["finished"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["nft", "grpo"])
def test_rl_raises_a_reward_on_a_tiny_qwen_image_edit_pipeline(algo: str, tmp_path: Path) -> None:
    """Qwen-Image-Edit: the source image read by the text encoder's vision tower and appended as latent tokens; groups
    keyed by source; the reward rises; the LoRA loads into a fresh pipeline with diffusers' loader and changes the
    velocity it predicts."""
    from PIL import Image

    from rationalrewards.rewardmodel.images import image_ref_from_pil
    from rationalrewards.training import GRPOTrainer, NFTTrainer, PromptItem
    from rationalrewards.training.flow_policy import policy_for
    from rationalrewards.training.tiny_flow import build_tiny_flow_pipeline

    sources = [image_ref_from_pil(Image.new("RGB", (32, 32), c)) for c in ((200, 20, 20), (20, 20, 200))]
    items = [PromptItem(p, s) for p in ("make it darker", "darken the picture") for s in sources]
    config = _config(algo, learning_rate=1e-2, kl_beta=0.0, max_steps=36, max_sequence_length=64)
    trainer = (NFTTrainer if algo == "nft" else GRPOTrainer)(
        config, _reward("qwen_darkness"), items, pipeline=build_tiny_flow_pipeline("qwen_image_edit"), out=tmp_path
    )
    assert trainer.policy.edits
    history = trainer.train()
    rewards = [row["reward_mean"] for row in history]
    noise = statistics.pstdev([b - a for a, b in itertools.pairwise(rewards)]) / 2**0.5
    gain = statistics.fmean(rewards[-6:]) - statistics.fmean(rewards[:6])
    assert gain > max(4 * noise, 0.05), (gain, noise, rewards)
    assert {key[1] for key in trainer.last_step["keys"]} == {s.sha256 for s in sources}
    fresh = build_tiny_flow_pipeline("qwen_image_edit")  # the same seed: the same weights as the trained one's base
    policy = policy_for(fresh, resolution=32, guidance_scale=1.0, max_sequence_length=64)
    cond = policy.encode(["make it darker"], [sources[0]])
    noise_latents = policy.initial_noise(1, torch.Generator().manual_seed(3))
    sigma = torch.tensor([0.7])
    with torch.no_grad():
        before = policy.velocity(noise_latents, sigma, cond)
        fresh.load_lora_weights(tmp_path / "lora")
        after = policy.velocity(noise_latents, sigma, cond)
    assert (after - before).abs().max() > 1e-4


def test_qwen_image_edit_plus_is_refused_by_name() -> None:
    from rationalrewards.training.flow_policy import policy_for

    class QwenImageEditPlusPipeline:  # the name decides, before any weight is read
        transformer = type("QwenImageTransformer2DModel", (), {})()

    with pytest.raises(ValueError, match=r"Qwen-Image-Edit-2509 \(several source images\) is not trained here yet"):
        policy_for(QwenImageEditPlusPipeline(), resolution=32, guidance_scale=1.0, max_sequence_length=16)


def test_the_ocr_reward_reads_the_text_the_prompt_quotes(tmp_path: Path) -> None:
    """Real OCR (rapidocr's shipped weights) on rendered text: the asked-for word scores high, another word lower, and
    a prompt that quotes nothing abstains (it leaves a reward mix)."""
    pytest.importorskip("rapidocr_onnxruntime")
    import asyncio

    from PIL import Image, ImageDraw, ImageFont

    from rationalrewards.rewardmodel.images import image_ref_from_path
    from rationalrewards.rewardmodel.schemas import Abstention, CritiqueRequest
    from rationalrewards.rewardmodel.scoring import reward_or_none
    from rationalrewards.training._rl_rewards import parse_reward_terms, term_reward_model

    image = Image.new("RGB", (256, 128), "white")
    ImageDraw.Draw(image).text((20, 35), "OPEN", fill="black", font=ImageFont.load_default(size=48))
    image.save(tmp_path / "sign.png")
    [term] = parse_reward_terms(["ocr:0.5"])
    model = term_reward_model(term)
    asked = ['a shop sign that says "OPEN"', "a shop sign that says 'CLOSED'", "a shop sign"]
    requests = [CritiqueRequest(prompt=p, image=image_ref_from_path(tmp_path / "sign.png")) for p in asked]
    right, wrong, nothing = asyncio.run(model.critique(requests))  # type: ignore[attr-defined]
    assert reward_or_none(right, "paper") == pytest.approx(1.0)
    assert reward_or_none(wrong, "paper") < 0.6
    assert isinstance(nothing, Abstention) and "quotes no text" in nothing.detail
