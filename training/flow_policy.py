"""Flow-matching generators as RL policies.

The RL trainers need more from a diffusers pipeline than its `__call__`: the conditioning for a batch of prompts (and
source images for editing), the velocity of the transformer at any noise level, the sampler's noise levels and the
decoder. `FlowPolicy` is that surface; `SD3Policy` serves the Stable Diffusion 3 family (text-to-image) and
`FluxPolicy` the FLUX family (text-to-image, and editing with FLUX Kontext, whose source image enters as extra latent
tokens). Noise level `sigma` runs from 1 (pure noise) to 0 (clean); x_sigma = (1 - sigma) x0 + sigma eps, and the
transformer predicts the velocity v = eps - x0, as both families were trained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image

from rationalrewards.rewardmodel.images import load_pil
from rationalrewards.rewardmodel.schemas import ImageRef


@dataclass
class Conditioning:
    """Batch-first tensors a policy's transformer reads besides the latents (prompt embeddings, pooled embeddings,
    source-image latents); `select` and `repeat` keep them aligned with the samples."""

    tensors: dict[str, torch.Tensor]

    def select(self, index: torch.Tensor | Sequence[int]) -> Conditioning:
        index = torch.as_tensor(index, dtype=torch.long)
        return Conditioning({k: v[index.to(v.device)] for k, v in self.tensors.items()})

    def repeat(self, times: int) -> Conditioning:
        """Each row `times` times in a row (a prompt's group of samples)."""
        return Conditioning({k: v.repeat_interleave(times, dim=0) for k, v in self.tensors.items()})

    @staticmethod
    def cat(items: Sequence[Conditioning]) -> Conditioning:
        return Conditioning({k: torch.cat([c.tensors[k] for c in items]) for k in items[0].tensors})


class FlowPolicy(Protocol):
    pipe: Any
    transformer: Any  # a diffusers transformer with peft adapters (typed loosely: its adapter API is dynamic)
    edits: bool  # takes a source image

    def encode(self, prompts: Sequence[str], sources: Sequence[ImageRef | None]) -> Conditioning: ...

    def initial_noise(self, n: int, generator: torch.Generator) -> torch.Tensor: ...

    def velocity(self, latents: torch.Tensor, sigma: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        """The velocity the sampler follows (with classifier-free guidance where the family samples with it)."""
        ...

    def train_velocity(self, latents: torch.Tensor, sigma: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        """The velocity the losses train (the conditional one)."""
        ...

    def sigmas(self, steps: int) -> torch.Tensor: ...

    def decode(self, latents: torch.Tensor) -> list[Image.Image]: ...


def shifted_sigmas(steps: int, shift: float) -> torch.Tensor:
    """`steps + 1` noise levels from 1 to 0, shifted toward noise as SD3 and FLUX sample (sigma' = s sigma / (1 + (s -
    1) sigma))."""
    sigmas = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    return (shift * sigmas / (1 + (shift - 1) * sigmas)).float()


def policy_for(pipe: object, *, resolution: int, guidance_scale: float, max_sequence_length: int) -> FlowPolicy:
    """The policy adapter for a loaded pipeline, by its transformer's family."""
    if type(pipe).__name__ == "SketchFlowPipeline":
        return SketchFlowPolicy(pipe, guidance_scale)
    family = type(getattr(pipe, "transformer", None)).__name__
    if family.startswith("SD3"):
        return SD3Policy(pipe, resolution, guidance_scale, max_sequence_length)
    if family.startswith("Flux"):
        return FluxPolicy(pipe, resolution, guidance_scale, max_sequence_length)
    if family.startswith("QwenImage"):
        if type(pipe).__name__.startswith("QwenImageEditPlus"):
            raise ValueError(
                f"{type(pipe).__name__}: Qwen-Image-Edit-2509 (several source images) is not trained here yet; "
                "Qwen-Image and Qwen-Image-Edit (one source image) are"
            )
        return QwenImagePolicy(pipe, resolution, guidance_scale, max_sequence_length)
    raise ValueError(
        f"{type(pipe).__name__} with a {family} is not a flow-matching family the RL trainers support "
        "(SD3, FLUX or Qwen-Image transformers, or the sketch flow pipeline)"
    )


class _Denoiser:
    """What every policy derives from its denoiser and scheduler: device, dtype and the sampler's noise levels."""

    transformer: Any
    shift: float

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.transformer.parameters()).dtype

    def sigmas(self, steps: int) -> torch.Tensor:
        return shifted_sigmas(steps, self.shift)


class _Base(_Denoiser):
    def __init__(self, pipe: Any, resolution: int, guidance_scale: float, max_sequence_length: int) -> None:
        self.pipe = pipe
        self.transformer = pipe.transformer
        self.vae = pipe.vae
        self.resolution = resolution
        self.guidance_scale = guidance_scale
        self.max_sequence_length = max_sequence_length
        self.scale_factor = pipe.vae_scale_factor
        self.shift = float(getattr(pipe.scheduler.config, "shift", 1.0))

    def _to_pixels(self, latents: torch.Tensor) -> list[Image.Image]:
        config = self.vae.config
        latents = latents / config.scaling_factor + (config.shift_factor or 0.0)
        with torch.no_grad():
            pixels = self.vae.decode(latents.to(self.vae.dtype), return_dict=False)[0]
        pixels = ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu()
        return [Image.fromarray(array.numpy()) for array in pixels]

    def _encode_image(self, ref: ImageRef) -> torch.Tensor:
        image = load_pil(ref).convert("RGB").resize((self.resolution, self.resolution))
        pixels = torch.from_numpy(np.array(image)).float().permute(2, 0, 1) / 127.5 - 1
        with torch.no_grad():
            latents = self.vae.encode(pixels[None].to(self.device, self.vae.dtype)).latent_dist.mode()
        config = self.vae.config
        return (latents - (config.shift_factor or 0.0)) * config.scaling_factor


class SD3Policy(_Base):
    """Stable Diffusion 3 / 3.5: latents (B, C, H/f, W/f); classifier-free guidance when `guidance_scale` > 1 (the
    old policy samples with it; the loss trains the conditional velocity, as DiffusionNFT does)."""

    edits = False

    def encode(self, prompts: Sequence[str], sources: Sequence[ImageRef | None]) -> Conditioning:
        if any(source is not None for source in sources):
            raise ValueError("an SD3 pipeline does not edit; use a FLUX Kontext pipeline for editing prompts")
        guided = self.guidance_scale > 1
        with torch.no_grad():
            embeds, negative, pooled, negative_pooled = self.pipe.encode_prompt(
                prompt=list(prompts),
                prompt_2=None,
                prompt_3=None,
                device=self.device,
                do_classifier_free_guidance=guided,
                max_sequence_length=self.max_sequence_length,
            )
        tensors = {"embeds": embeds, "pooled": pooled}
        if guided:
            tensors |= {"negative": negative, "negative_pooled": negative_pooled}
        return Conditioning(tensors)

    def initial_noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        size = self.resolution // self.scale_factor
        channels = self.transformer.config.in_channels
        return torch.randn((n, channels, size, size), generator=generator).to(self.device, self.dtype)

    def _forward(self, latents: torch.Tensor, sigma: torch.Tensor, embeds: torch.Tensor, pooled: torch.Tensor) -> Any:
        return self.transformer(
            hidden_states=latents,
            timestep=sigma.to(latents.dtype) * 1000,
            encoder_hidden_states=embeds,
            pooled_projections=pooled,
            return_dict=False,
        )[0]

    def velocity(self, latents: torch.Tensor, sigma: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        t = cond.tensors
        conditional = self._forward(latents, sigma, t["embeds"], t["pooled"])
        if "negative" not in t:
            return conditional
        unconditional = self._forward(latents, sigma, t["negative"], t["negative_pooled"])
        return unconditional + self.guidance_scale * (conditional - unconditional)

    def train_velocity(self, latents: torch.Tensor, sigma: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        return self._forward(latents, sigma, cond.tensors["embeds"], cond.tensors["pooled"])

    def decode(self, latents: torch.Tensor) -> list[Image.Image]:
        return self._to_pixels(latents)


class FluxPolicy(_Base):
    """FLUX.1 (text-to-image) and FLUX.1 Kontext (editing): latents packed 2x2 into tokens; a guidance-distilled
    transformer takes the guidance scale as an input; Kontext appends the source image's latent tokens after the
    noisy ones (ids marked 1) and predicts velocity for the noisy ones only."""

    def __init__(self, pipe: Any, resolution: int, guidance_scale: float, max_sequence_length: int) -> None:
        super().__init__(pipe, resolution, guidance_scale, max_sequence_length)
        self.edits = type(pipe).__name__.startswith("FluxKontext")
        self.latent_size = 2 * (resolution // (self.scale_factor * 2))
        self.channels = self.transformer.config.in_channels // 4

    def encode(self, prompts: Sequence[str], sources: Sequence[ImageRef | None]) -> Conditioning:
        if not self.edits and any(source is not None for source in sources):
            raise ValueError(f"{type(self.pipe).__name__} does not edit; use a FLUX Kontext pipeline")
        if self.edits and any(source is None for source in sources):
            raise ValueError("an editing pipeline needs a source image for every prompt")
        with torch.no_grad():
            embeds, pooled, _ = self.pipe.encode_prompt(
                prompt=list(prompts),
                prompt_2=None,
                device=self.device,
                max_sequence_length=self.max_sequence_length,
            )
        tensors = {"embeds": embeds, "pooled": pooled}
        if self.edits:
            packed = [self._pack(self._encode_image(source)) for source in sources if source is not None]
            tensors["source"] = torch.cat(packed)
        return Conditioning(tensors)

    def _pack(self, latents: torch.Tensor) -> torch.Tensor:
        b, c, h, w = latents.shape
        latents = latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
        return latents.reshape(b, (h // 2) * (w // 2), c * 4)

    def _unpack(self, tokens: torch.Tensor) -> torch.Tensor:
        b, _, d = tokens.shape
        h = w = self.latent_size // 2
        latents = tokens.view(b, h, w, d // 4, 2, 2).permute(0, 3, 1, 4, 2, 5)
        return latents.reshape(b, d // 4, h * 2, w * 2)

    def _ids(self, marker: float) -> torch.Tensor:
        h = w = self.latent_size // 2
        ids = torch.zeros(h, w, 3)
        ids[..., 0] = marker
        ids[..., 1] = torch.arange(h)[:, None]
        ids[..., 2] = torch.arange(w)[None, :]
        return ids.reshape(h * w, 3).to(self.device, self.dtype)

    def initial_noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        size = self.latent_size
        noise = torch.randn((n, self.channels, size, size), generator=generator).to(self.device, self.dtype)
        return self._pack(noise)

    def velocity(self, latents: torch.Tensor, sigma: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        t = cond.tensors
        tokens, image_ids = latents, self._ids(0)
        if "source" in t:
            tokens = torch.cat([latents, t["source"]], dim=1)
            image_ids = torch.cat([image_ids, self._ids(1)])
        guidance = None
        if self.transformer.config.guidance_embeds:
            guidance = torch.full((latents.shape[0],), self.guidance_scale, device=self.device, dtype=latents.dtype)
        out = self.transformer(
            hidden_states=tokens,
            timestep=sigma.to(latents.dtype),
            guidance=guidance,
            pooled_projections=t["pooled"],
            encoder_hidden_states=t["embeds"],
            txt_ids=torch.zeros(t["embeds"].shape[1], 3, device=self.device, dtype=self.dtype),
            img_ids=image_ids,
            return_dict=False,
        )[0]
        return out[:, : latents.shape[1]]

    train_velocity = velocity  # guidance is an input here, so sampling and training see the same function

    def decode(self, latents: torch.Tensor) -> list[Image.Image]:
        return self._to_pixels(self._unpack(latents))


class QwenImagePolicy(FluxPolicy):
    """Qwen-Image (text to image) and Qwen-Image-Edit (one source image): latents packed 2x2 into tokens as FLUX's; a
    single-frame video VAE normalised by its per-channel mean and std; the text is Qwen2.5-VL's last hidden state after
    the pipeline's template (for an edit, with the source image read by the encoder's vision tower), with a mask,
    padded to `max_sequence_length` so prompts of any length batch together (for an edit it must cover the image's
    vision tokens too: the pipeline truncates there); no pooled embedding and no guidance input (the pipeline's true
    classifier-free guidance is off, as in RL sampling). An edit appends the source image's latent tokens after the
    noisy ones (a second entry of `img_shapes`) and predicts velocity for the noisy ones only, as Kontext does. The
    scheduler's shift is used as it is: the pipeline's resolution-dependent shift is not applied (the trainers sample
    at one resolution), and the source is read at the training resolution, not the pipeline's megapixel."""

    def __init__(self, pipe: Any, resolution: int, guidance_scale: float, max_sequence_length: int) -> None:
        super().__init__(pipe, resolution, guidance_scale, max_sequence_length)
        self.edits = type(pipe).__name__.startswith("QwenImageEdit")

    def encode(self, prompts: Sequence[str], sources: Sequence[ImageRef | None]) -> Conditioning:
        if not self.edits and any(source is not None for source in sources):
            raise ValueError(f"{type(self.pipe).__name__} does not edit; use a Qwen-Image-Edit pipeline")
        if self.edits and any(source is None for source in sources):
            raise ValueError("an editing pipeline needs a source image for every prompt")
        side = (self.resolution, self.resolution)
        images = [load_pil(source).convert("RGB").resize(side) for source in sources if source is not None]
        with torch.no_grad():
            embeds, mask = self.pipe.encode_prompt(
                prompt=list(prompts),
                device=self.device,
                max_sequence_length=self.max_sequence_length,
                **({"image": images} if self.edits else {}),
            )
        if mask is None:
            mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        pad = self.max_sequence_length - embeds.shape[1]
        if pad > 0:
            embeds = torch.nn.functional.pad(embeds, (0, 0, 0, pad))
            mask = torch.nn.functional.pad(mask, (0, pad))
        tensors = {"embeds": embeds, "mask": mask}
        if self.edits:
            tensors["source"] = torch.cat([self._source_tokens(image) for image in images])
        return Conditioning(tensors)

    def _source_tokens(self, image: Image.Image) -> torch.Tensor:
        """A source image as the packed, normalised latent tokens the edit transformer reads beside the noisy ones."""
        config = self.vae.config
        pixels = torch.from_numpy(np.array(image)).float().permute(2, 0, 1) / 127.5 - 1
        with torch.no_grad():
            latents = self.vae.encode(pixels[None, :, None].to(self.device, self.vae.dtype)).latent_dist.mode()
        mean = torch.tensor(config.latents_mean).view(1, config.z_dim, 1, 1, 1).to(latents)
        std = torch.tensor(config.latents_std).view(1, config.z_dim, 1, 1, 1).to(latents)
        return self._pack(((latents - mean) / std)[:, :, 0]).to(self.dtype)

    def velocity(self, latents: torch.Tensor, sigma: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        t = cond.tensors
        side = self.latent_size // 2
        tokens, shapes = latents, [(1, side, side)]
        if "source" in t:
            tokens = torch.cat([latents, t["source"]], dim=1)
            shapes = [(1, side, side), (1, side, side)]
        out = self.transformer(
            hidden_states=tokens,
            timestep=sigma.to(latents.dtype),
            encoder_hidden_states=t["embeds"],
            encoder_hidden_states_mask=t["mask"],
            img_shapes=[shapes] * latents.shape[0],
            return_dict=False,
        )[0]
        return out[:, : latents.shape[1]]

    train_velocity = velocity

    def decode(self, latents: torch.Tensor) -> list[Image.Image]:
        config = self.vae.config
        video = self._unpack(latents)[:, :, None]  # one frame
        mean = torch.tensor(config.latents_mean).view(1, config.z_dim, 1, 1, 1).to(video)
        std = torch.tensor(config.latents_std).view(1, config.z_dim, 1, 1, 1).to(video)
        with torch.no_grad():
            pixels = self.vae.decode((video * std + mean).to(self.vae.dtype), return_dict=False)[0][:, :, 0]
        pixels = ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu()
        return [Image.fromarray(array.numpy()) for array in pixels]


class SketchFlowPolicy(_Denoiser):
    """The 32-pixel sketch generator (`sketch.flow`): a UNet on pixels, so the "latents" are the image itself
    (3 x 32 x 32 in [-1, 1]) and decoding is a clamp. Guidance as SD3: the empty prompt is the unconditional one."""

    edits = False

    def __init__(self, pipe: Any, guidance_scale: float) -> None:
        self.pipe = pipe
        self.transformer = pipe.unet  # the denoiser the trainers put LoRA on (named as the other families name it)
        self.resolution = pipe.resolution
        self.guidance_scale = guidance_scale
        self.shift = float(getattr(pipe.scheduler.config, "shift", 1.0))

    def encode(self, prompts: Sequence[str], sources: Sequence[ImageRef | None]) -> Conditioning:
        if any(source is not None for source in sources):
            raise ValueError("the sketch flow pipeline draws from text only; it does not edit")
        with torch.no_grad():
            tensors = {"embeds": self.pipe.encode_prompt(list(prompts))}
            if self.guidance_scale > 1:
                tensors["negative"] = self.pipe.encode_prompt([""] * len(prompts))
        return Conditioning(tensors)

    def initial_noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        shape = (n, 3, self.resolution, self.resolution)
        return torch.randn(shape, generator=generator).to(self.device, self.dtype)

    def velocity(self, latents: torch.Tensor, sigma: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        t = cond.tensors
        if "negative" not in t:
            return self.pipe.velocity(latents, sigma, t["embeds"])
        return self.pipe.guided_velocity(latents, sigma, t["embeds"], t["negative"], self.guidance_scale)

    def train_velocity(self, latents: torch.Tensor, sigma: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        return self.pipe.velocity(latents, sigma, cond.tensors["embeds"])

    def decode(self, latents: torch.Tensor) -> list[Image.Image]:
        return list(self.pipe.to_images(latents))
