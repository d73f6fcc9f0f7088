"""The CUDA, bf16 paths on tiny models (`make test-gpu`; skipped without a CUDA device): each RL trainer's steps, the
distillation trainer, the diffusers generator's batching, the in-process critic. The same code as the CPU tests,
moved to the GPU; on a machine without CUDA every test here is skipped, cleanly and by name."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (make test-gpu runs these on a GPU)"),
]


@pytest.mark.parametrize("algo", ["nft", "grpo"])
def test_rl_steps_on_cuda_in_bf16(algo: str, tmp_path: Path) -> None:
    import rl_rewards
    from rationalrewards.rewardmodel.backends.function import FunctionRewardModel
    from rationalrewards.training import GRPOConfig, GRPOTrainer, NFTConfig, NFTTrainer

    config = (NFTConfig if algo == "nft" else GRPOConfig)(
        tiny=True, resolution=32, max_sequence_length=16, group_size=4, prompts_per_step=2, sample_steps=4,
        guidance_scale=1.0, lora_rank=4, lora_alpha=8, train_batch_size=8, eval_every=0, save_every=1000,
        report_to="none", ban_solved=False, max_steps=2, device="cuda", mixed_precision="bf16",
    )  # fmt: skip
    critic = FunctionRewardModel(rl_rewards.darkness, name="darkness")
    trainer = (NFTTrainer if algo == "nft" else GRPOTrainer)(config, critic, ["a red car", "two dogs"], out=tmp_path)
    assert trainer.device.type == "cuda" and trainer.weight_dtype == torch.bfloat16
    history = trainer.train()
    assert [row["step"] for row in history] == [1, 2]
    assert all(math.isfinite(float(row["loss"])) for row in history if "loss" in row)
    assert (tmp_path / "lora").is_dir()


def test_distillation_on_cuda_in_bf16(tmp_path: Path) -> None:
    from rationalrewards.runtime.job_configs import ParrotJob
    from rationalrewards.runtime.jobs import parrot_job
    from rationalrewards.training.distill_config import DistillConfig
    from rationalrewards.training.distill_trainer import train

    parrot_job(ParrotJob(out=tmp_path / "parrot", world="sketch", pairs_count=8, progress=False))
    config = DistillConfig(
        output_dir="unused", tiny=True, data=[str(tmp_path / "parrot")], per_device_train_batch_size=2,
        gradient_accumulation_steps=1, logging_steps=1, report_to=["none"], eval_share=0.0, save_steps=1000,
        max_steps=3, bf16=True,
    )  # fmt: skip
    figures = train(config, tmp_path / "run")
    assert figures["steps"] == 3 and math.isfinite(figures["train_loss_last"])


def test_diffusers_generator_batches_on_cuda(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from rationalrewards.agents.diffusers_generator import DiffusersGenerator, save_tiny_sd_pipeline

    pipeline = save_tiny_sd_pipeline(tmp_path / "tiny-sd")
    generator = DiffusersGenerator(
        pipeline, tmp_path / "images", device="cuda", steps=3, size=32, max_batch=8, max_wait=0.2
    )

    async def run() -> tuple[object, list[object]]:
        [alone] = await generator.generate(["a photo of two dogs"], [5])
        prompts = ["a photo of two dogs"] + [f"a photo of {n} cats" for n in range(2, 9)]
        together = await asyncio.gather(*(generator.generate([p], [5 if i == 0 else i]) for i, p in enumerate(prompts)))
        return alone, together

    alone, together = asyncio.run(run())
    assert generator.batcher.batch_sizes[-1] == 8
    pixels = [np.asarray(Image.open(image.image.uri), dtype=np.int16) for image in (alone, together[0][0])]  # type: ignore[attr-defined, index]
    assert np.abs(pixels[0] - pixels[1]).max() <= 2  # CUDA kernels differ a little by batch size


def test_in_process_critic_on_cuda(tmp_path: Path, png_file: Path) -> None:
    from rationalrewards.rewardmodel.backends.local import TransformersRewardModel
    from rationalrewards.rewardmodel.images import image_ref_from_path
    from rationalrewards.rewardmodel.schemas import Abstention, Critique, CritiqueRequest
    from rationalrewards.rewardmodel.tiny import save_tiny_vlm

    model_dir = save_tiny_vlm(tmp_path / "tiny-vlm")
    critic = TransformersRewardModel(model_dir, device="cuda", max_new_tokens=16)
    [answer] = asyncio.run(critic.critique([CritiqueRequest(prompt="a cat", image=image_ref_from_path(png_file))]))
    assert isinstance(answer, Critique | Abstention)  # a random tiny model writes no critique: an honest abstention
    assert json.dumps(answer.model_dump(mode="json"))
