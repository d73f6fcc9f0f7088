"""Tiny flow-matching pipelines built from config in code (random weights, a few hundred thousand parameters), so the
RL trainers run end to end on a CPU with no downloads: an SD3 pipeline (text-to-image, no T5 encoder) and FLUX /
FLUX Kontext pipelines (text-to-image / editing). Their images are noise until trained; the mechanics are real."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from rationalrewards.plumbing.choices import choice

TinyFamily = Literal["sd3", "flux", "flux_kontext", "qwen_image", "qwen_image_edit"]
TINY_RESOLUTION = 32


def build_tiny_flow_pipeline(family: TinyFamily = "sd3", seed: int = 0) -> Any:
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler

    from rationalrewards.agents.diffusers_generator import tiny_clip_text_encoder, tiny_vae
    from rationalrewards.rewardmodel.tiny import build_tokenizer

    choice(family, TinyFamily, "tiny family")
    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    tokenizer.model_max_length = 16
    transformer: Any
    if family == "sd3":
        from diffusers import SD3Transformer2DModel, StableDiffusion3Pipeline

        transformer = SD3Transformer2DModel(
            sample_size=TINY_RESOLUTION // 2,
            patch_size=2,
            in_channels=4,
            num_layers=2,
            attention_head_dim=8,
            num_attention_heads=4,
            joint_attention_dim=64,
            caption_projection_dim=32,
            pooled_projection_dim=64,
            out_channels=4,
            pos_embed_max_size=32,
        )
        return StableDiffusion3Pipeline(
            transformer=transformer,
            scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
            vae=tiny_vae(TINY_RESOLUTION, shift_factor=0.0, scaling_factor=1.0),
            text_encoder=tiny_clip_text_encoder(tokenizer, projection=True),
            tokenizer=tokenizer,
            text_encoder_2=tiny_clip_text_encoder(tokenizer, projection=True),
            tokenizer_2=tokenizer,
            text_encoder_3=None,
            tokenizer_3=None,
        )
    if family in ("qwen_image", "qwen_image_edit"):
        return _tiny_qwen_image(edit=family == "qwen_image_edit")
    from diffusers import FluxKontextPipeline, FluxPipeline, FluxTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        guidance_embeds=True,
        axes_dims_rope=(4, 4, 8),
    )
    t5 = T5EncoderModel(
        T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4, pad_token_id=0)
    )
    pipeline_class = FluxKontextPipeline if family == "flux_kontext" else FluxPipeline
    return pipeline_class(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=tiny_vae(TINY_RESOLUTION, shift_factor=0.0, scaling_factor=1.0),
        text_encoder=tiny_clip_text_encoder(tokenizer, projection=False),
        tokenizer=tokenizer,
        text_encoder_2=t5,
        tokenizer_2=tokenizer,
    )


def _tiny_qwen_image(edit: bool = False) -> Any:
    """Qwen-Image (or Qwen-Image-Edit) in miniature: its transformer (2 layers), its video VAE (a single frame), and a
    tiny Qwen2.5-VL as the text encoder and, for edits, the reader of the source image (`rewardmodel/tiny.py`), on the
    flow-matching Euler scheduler."""
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageEditPipeline,
        QwenImagePipeline,
        QwenImageTransformer2DModel,
    )

    from rationalrewards.rewardmodel.tiny import build_tiny_vlm

    text_encoder, processor = build_tiny_vlm("qwen2_5_vl")
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=16,
        out_channels=4,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=text_encoder.config.text_config.hidden_size,
        axes_dims_rope=(4, 6, 6),
    )
    vae = AutoencoderKLQwenImage(
        base_dim=8, z_dim=4, dim_mult=[1, 2], num_res_blocks=1, temperal_downsample=[False],
        latents_mean=[0.0] * 4, latents_std=[1.0] * 4,
    )  # fmt: skip
    parts = {
        "scheduler": FlowMatchEulerDiscreteScheduler(shift=3.0),
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": processor.tokenizer,
        "transformer": transformer,
    }
    if edit:
        return QwenImageEditPipeline(processor=processor, **parts)
    return QwenImagePipeline(**parts)


def save_tiny_flow_pipeline(directory: str | Path, family: TinyFamily = "sd3", seed: int = 0) -> Path:
    """Build and save a tiny pipeline as safetensors; `load_flow_pipeline` (or diffusers) loads it back."""
    directory = Path(directory)
    build_tiny_flow_pipeline(family, seed).save_pretrained(directory, safe_serialization=True)
    return directory
