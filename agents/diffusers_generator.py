"""`DiffusersGenerator`: any local diffusers text-to-image or image-editing pipeline as an `ImageGenerator`.

Loaded from a local directory only, safetensors only, float32 on CPU unless `device`/`dtype` say otherwise (device
moves are explicit). A pipeline whose call takes `image=` is used for editing when a source image is given.
`save_tiny_sd_pipeline` builds a tiny Stable-Diffusion pipeline from config (random weights: its images are noise),
so the loop mechanics are testable without downloads.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rationalrewards.agents.generator import GeneratedImage, batch_sources
from rationalrewards.agents.world import pipeline_class as pipeline_class_of
from rationalrewards.plumbing.batching import MicroBatcher
from rationalrewards.rewardmodel.errors import RewardModelError
from rationalrewards.rewardmodel.images import image_ref_from_pil, load_pil
from rationalrewards.rewardmodel.schemas import ImageRef


def load_pipeline(model_dir: str | Path, *, device: str = "cpu", dtype: Any = None) -> Any:
    """A diffusers pipeline from a local directory, safetensors only. Components the index lists as absent (an SD3
    pipeline saved without its T5 encoder, say) are passed as None, which `from_pretrained` otherwise refuses."""
    import torch
    from diffusers import DiffusionPipeline

    model_dir = Path(model_dir)
    index_file = model_dir / "model_index.json"
    if not index_file.is_file():
        raise RewardModelError(f"{model_dir} is not a diffusers pipeline directory (no model_index.json)")
    if any(model_dir.rglob("*.bin")) and not any(model_dir.rglob("*.safetensors")):
        raise RewardModelError(f"{model_dir} holds only pickle weights; only safetensors are loaded")
    index = json.loads(index_file.read_text(encoding="utf-8"))
    absent = {name: None for name, value in index.items() if isinstance(value, list) and value == [None, None]}
    # A world's own pipeline class (the sketch world's 32-pixel generator, say): diffusers does not know it by name.
    pipeline_class: Any = pipeline_class_of(str(index.get("_class_name", ""))) or DiffusionPipeline
    pipe = pipeline_class.from_pretrained(model_dir, use_safetensors=True, dtype=dtype or torch.float32, **absent)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def load_lora(pipe: object, lora: str | Path) -> None:
    """A LoRA written by `rationalrewards rl` (or any diffusers LoRA directory), through diffusers' own loader."""
    lora = Path(lora)
    if not lora.is_dir() or not any(lora.glob("*.safetensors")):
        raise RewardModelError(f"{lora} is not a LoRA directory (no .safetensors file)")
    if not hasattr(pipe, "load_lora_weights"):
        raise RewardModelError(f"{type(pipe).__name__} does not take LoRA weights")
    pipe.load_lora_weights(lora)


class DiffusersGenerator:
    def __init__(
        self,
        model_dir: str | Path,
        out_dir: str | Path,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        steps: int = 20,
        guidance_scale: float | None = None,
        size: int | None = None,
        lora: str | Path | None = None,
        max_batch: int = 8,
        max_wait: float = 0.02,
    ) -> None:
        import torch

        torch_dtype = getattr(torch, dtype, None)
        if not isinstance(torch_dtype, torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r}")
        self.pipe = load_pipeline(model_dir, device=device, dtype=torch_dtype)
        if lora is not None:
            load_lora(self.pipe, lora)
        self.device, self.steps, self.guidance_scale, self.size = device, steps, guidance_scale, size
        self.out_dir = Path(out_dir)
        self.name = f"diffusers:{Path(model_dir).name}" + (f"+lora:{Path(lora).name}" if lora else "")
        self.edits = "image" in inspect.signature(self.pipe.__call__).parameters
        # Requests from every prompt and round in flight share pipeline calls (up to max_batch images, waiting at most
        # max_wait seconds for a batch to fill); edits and text-to-image requests never share one.
        self.batcher: MicroBatcher[_ImageRequest, GeneratedImage] = MicroBatcher(
            self._call, max_size=max_batch, max_wait=max_wait, key=lambda request: request.source is None
        )
        self.batch_size = max_batch  # GCR then asks for a round's candidates in one call

    def _call(self, requests: list[_ImageRequest]) -> list[GeneratedImage]:
        """One pipeline call for a micro-batch. One `torch.Generator` per image, seeded with its own seed, so an
        image does not depend on the batch it landed in (diffusers draws each latent from its own generator)."""
        import torch

        kwargs: dict[str, object] = {
            "num_inference_steps": self.steps,
            "generator": [torch.Generator(self.device).manual_seed(r.seed) for r in requests],
        }
        if self.guidance_scale is not None:
            kwargs["guidance_scale"] = self.guidance_scale
        if self.size is not None:
            kwargs["height"] = kwargs["width"] = self.size
        sources = [r.source for r in requests]
        if any(source is not None for source in sources):
            if not self.edits:
                raise RewardModelError(f"{self.name} is a text-to-image pipeline; it cannot edit a source image")
            kwargs["image"] = [load_pil(source) for source in sources if source is not None]
        images = self.pipe([r.prompt for r in requests], **kwargs).images
        return [
            GeneratedImage(
                image=image_ref_from_pil(image, self.out_dir),
                prompt=r.prompt,
                seed=r.seed,
                generator=self.name,
                source_image=r.source,
            )
            for r, image in zip(requests, images, strict=True)
        ]

    async def generate(
        self, prompts: Sequence[str], seeds: Sequence[int], source_images: Sequence[ImageRef | None] | None = None
    ) -> list[GeneratedImage]:
        sources = batch_sources(prompts, seeds, source_images)
        requests = [_ImageRequest(p, s, src) for p, s, src in zip(prompts, seeds, sources, strict=True)]
        return await self.batcher.submit(requests)


@dataclass(frozen=True)
class _ImageRequest:
    prompt: str
    seed: int
    source: ImageRef | None


def save_tiny_sd_pipeline(directory: str | Path, seed: int = 0) -> Path:
    """A Stable-Diffusion pipeline at a few hundred thousand parameters, random weights, saved as safetensors."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    from rationalrewards.rewardmodel.tiny import build_tokenizer

    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    tokenizer.model_max_length = 16
    widths = {"block_out_channels": TINY_WIDTHS, "norm_num_groups": 8}  # the UNet and the VAE share their widths
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        cross_attention_dim=32,
        attention_head_dim=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        **widths,
    )
    vae = tiny_vae(sample_size=16)
    text_encoder = tiny_clip_text_encoder(tokenizer, projection=False)
    pipe: Any = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=DDIMScheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    directory = Path(directory)
    pipe.save_pretrained(directory, safe_serialization=True)
    return directory


TINY_WIDTHS = (16, 32)


def tiny_vae(sample_size: int, **config: object) -> object:
    """A two-block AutoencoderKL with 4 latent channels (scale factor 2) for the tiny pipelines."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        sample_size=sample_size,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=TINY_WIDTHS,
        norm_num_groups=8,
        **config,
    )


def tiny_clip_text_encoder(tokenizer: Any, *, projection: bool) -> object:
    """A two-layer CLIP text encoder over the tiny tokenizer (with a projection head for SD3's pooled embedding)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=tokenizer.model_max_length,
        projection_dim=32,
        bos_token_id=0,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=0,
    )
    return CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)
