"""`SketchFlowPipeline`: a tiny text-conditioned flow-matching image generator for the 32-pixel sketch world.

A real model our own code trains (`rationalrewards experiment train-sketch-generator`): a diffusers
`UNet2DConditionModel` working directly on pixels (3 x 32 x 32, no VAE: at this size a latent space saves nothing), a
two-layer CLIP text transformer over a word-level vocabulary of the sketch world's prompts, and diffusers'
`FlowMatchEulerDiscreteScheduler`. Flow matching as SD3 trains it: x_sigma = (1 - sigma) x0 + sigma eps, the network
predicts the velocity eps - x0 at timestep 1000 sigma; sampling integrates from noise to pixels with classifier-free
guidance (the empty prompt is the unconditional one).

It is a diffusers pipeline like any other: `save_pretrained` / `from_pretrained` (safetensors), one
`torch.Generator` per image, `load_lora_weights` for the LoRA the RL trainers write, so `--generator DIR` in GCR and
`rationalrewards rl --pipeline DIR` take it as they take SD3 or FLUX.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, UNet2DConditionModel
from diffusers.pipelines.pipeline_utils import DiffusionPipeline, ImagePipelineOutput

MAX_PROMPT_TOKENS = 24  # "an image of exactly 3 cars colored red, clean and sharp, every object fully inside the frame"
LORA_WEIGHTS = "pytorch_lora_weights.safetensors"
_SPECIAL = ("[PAD]", "[UNK]", "[BOS]", "[EOS]")


def prompt_vocabulary(prompts: Sequence[str]) -> list[str]:
    """The words (and punctuation) of `prompts`, as the tokenizer splits them, in first-seen order."""
    from tokenizers.pre_tokenizers import Whitespace

    split = Whitespace()
    seen: dict[str, None] = {}
    for prompt in prompts:
        for word, _ in split.pre_tokenize_str(prompt.lower()):
            seen.setdefault(word, None)
    return list(seen)


def build_word_tokenizer(words: Sequence[str]) -> Any:
    """A word-level tokenizer (lower-cased, split on whitespace and punctuation; unknown words read as [UNK]) that
    wraps each prompt in [BOS] ... [EOS] and pads to `MAX_PROMPT_TOKENS`."""
    from tokenizers import Tokenizer, normalizers, processors
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate([*_SPECIAL, *dict.fromkeys(words)])}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[BOS] $A [EOS]", special_tokens=[("[BOS]", vocab["[BOS]"]), ("[EOS]", vocab["[EOS]"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="[PAD]",
        unk_token="[UNK]",
        bos_token="[BOS]",
        eos_token="[EOS]",
        model_max_length=MAX_PROMPT_TOKENS,
    )


def build_sketch_flow_pipeline(words: Sequence[str], *, size: int = 32, seed: int = 0) -> SketchFlowPipeline:
    """A fresh (random) pipeline over the vocabulary `words`: about 1M parameters. Attention (self and cross) only
    at 8x8 and in the middle block: at 16x16 it made a CPU training step 1.7x slower, and where objects go and how many
    there are is decided at the coarse scale anyway."""
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    tokenizer = build_word_tokenizer(words)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=MAX_PROMPT_TOKENS,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    )
    unet = UNet2DConditionModel(
        sample_size=size,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(16, 32, 64),
        down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        cross_attention_dim=64,
        attention_head_dim=8,
        norm_num_groups=8,
        time_embedding_dim=64,
    )
    return SketchFlowPipeline(
        unet=unet, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0)
    )


class SketchFlowPipeline(DiffusionPipeline):
    """Text-to-image flow matching in pixel space (see the module docstring)."""

    model_cpu_offload_seq = "text_encoder->unet"  # type: ignore[assignment]  # diffusers declares it None
    unet: Any
    text_encoder: Any
    tokenizer: Any
    scheduler: Any

    def __init__(
        self,
        unet: UNet2DConditionModel,
        text_encoder: object,
        tokenizer: Any,
        scheduler: FlowMatchEulerDiscreteScheduler,
    ) -> None:
        super().__init__()
        self.register_modules(unet=unet, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)

    @property
    def resolution(self) -> int:
        return int(self.unet.config.sample_size)

    def encode_prompt(self, prompts: Sequence[str]) -> torch.Tensor:
        """(batch, MAX_PROMPT_TOKENS, 64) token states; the empty prompt is the unconditional one."""
        tokens = self.tokenizer(
            list(prompts), padding="max_length", truncation=True, max_length=MAX_PROMPT_TOKENS, return_tensors="pt"
        )
        device = self.unet.device
        return self.text_encoder(
            tokens.input_ids.to(device), attention_mask=tokens.attention_mask.to(device)
        ).last_hidden_state.to(self.unet.dtype)

    def velocity(self, pixels: torch.Tensor, sigma: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """The predicted velocity eps - x0 at noise level `sigma` (one per sample)."""
        return self.unet(pixels, sigma.to(pixels.dtype) * 1000, encoder_hidden_states=states, return_dict=False)[0]

    def guided_velocity(
        self, pixels: torch.Tensor, sigma: torch.Tensor, states: torch.Tensor, empty: torch.Tensor, scale: float
    ) -> torch.Tensor:
        if scale <= 1.0:
            return self.velocity(pixels, sigma, states)
        both = self.velocity(torch.cat([pixels, pixels]), torch.cat([sigma, sigma]), torch.cat([states, empty]))
        conditional, unconditional = both.chunk(2)
        return unconditional + scale * (conditional - unconditional)

    @staticmethod
    def to_images(pixels: torch.Tensor) -> list[object]:
        from PIL import Image

        array = ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        return [Image.fromarray(np.ascontiguousarray(a)) for a in array]

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | Sequence[str],
        num_inference_steps: int = 20,
        guidance_scale: float = 3.0,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_images_per_prompt: int = 1,
        output_type: str = "pil",
        return_dict: bool = True,
    ) -> Any:
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        prompts = [p for p in prompts for _ in range(num_images_per_prompt)]
        size = self.resolution
        if (height or size) != size or (width or size) != size:
            raise ValueError(f"this pipeline draws {size}x{size} images; got height={height}, width={width}")
        generators: list[Any] = list(generator) if isinstance(generator, (list, tuple)) else [generator] * len(prompts)
        if len(generators) != len(prompts):
            raise ValueError(f"got {len(generators)} generators for {len(prompts)} images")
        device, dtype = self.unet.device, self.unet.dtype
        # One draw per image from its own generator: an image does not depend on the batch it is drawn in.
        pixels = torch.stack([torch.randn((3, size, size), generator=g) for g in generators]).to(device, dtype)
        states = self.encode_prompt(prompts)
        empty = self.encode_prompt([""] * len(prompts)) if guidance_scale > 1.0 else states
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        for t in self.progress_bar(self.scheduler.timesteps):
            sigma = (t / self.scheduler.config.num_train_timesteps).expand(len(prompts))
            v = self.guided_velocity(pixels, sigma, states, empty, guidance_scale)
            pixels = self.scheduler.step(v, t, pixels, return_dict=False)[0]
        if output_type == "pt":
            images: Any = pixels
        else:
            images = self.to_images(pixels)
        return ImagePipelineOutput(images=images) if return_dict else (images,)

    # -- LoRA: what the RL trainers write, read back for generation --
    @classmethod
    def save_lora_weights(
        cls,
        save_directory: str | Path,
        transformer_lora_layers: dict[str, torch.Tensor],
        *,
        transformer_lora_adapter_metadata: dict[str, object] | None = None,
        safe_serialization: bool = True,
        **_: object,
    ) -> None:
        """The denoiser's LoRA as one safetensors file; its peft config (rank, alpha, targets) in the header."""
        from safetensors.torch import save_file

        if not safe_serialization:
            raise ValueError("LoRA weights are written as safetensors only")
        metadata = {"lora_config": json.dumps(transformer_lora_adapter_metadata or {}, default=list)}
        tensors = {k: v.detach().contiguous().cpu() for k, v in transformer_lora_layers.items()}
        Path(save_directory).mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(Path(save_directory) / LORA_WEIGHTS), metadata=metadata)

    def load_lora_weights(self, directory: str | Path, adapter_name: str = "default") -> None:
        from peft import LoraConfig
        from peft.utils import set_peft_model_state_dict
        from safetensors import safe_open

        path = Path(directory) / LORA_WEIGHTS
        with safe_open(str(path), framework="pt") as handle:
            config = json.loads((handle.metadata() or {}).get("lora_config") or "{}")
            state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (a safetensors handle)
        if not config:  # written without metadata: rank from the shapes, alpha = rank, targets from the names
            rank = next(v.shape[0] for k, v in state.items() if "lora_A" in k)
            targets = sorted({k.split(".lora_A")[0].split(".")[-1] for k in state if "lora_A" in k})
            config = {"r": rank, "lora_alpha": rank, "target_modules": targets}
        keep = {"r", "lora_alpha", "target_modules", "lora_dropout", "bias"}
        self.unet.add_adapter(LoraConfig(**{k: v for k, v in config.items() if k in keep}), adapter_name=adapter_name)
        result = set_peft_model_state_dict(self.unet, state, adapter_name=adapter_name)
        unexpected: list[str] = list(getattr(result, "unexpected_keys", None) or [])
        if unexpected:  # weights that went nowhere would leave the LoRA a silent no-op
            raise ValueError(f"{path} has LoRA weights this UNet has no place for: {unexpected[:3]}")
        self.unet.set_adapter(adapter_name)


__all__ = [
    "MAX_PROMPT_TOKENS",
    "SketchFlowPipeline",
    "build_sketch_flow_pipeline",
    "build_word_tokenizer",
    "prompt_vocabulary",
]
