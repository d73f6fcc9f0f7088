"""In-process VLM critic (Qwen2-VL / Qwen2.5-VL / Qwen3-VL families) for offline and CPU use.

Loads from a local directory only, safetensors only, `trust_remote_code=False`. Generation runs in a worker thread so
the event loop stays free; requests are batched (left padding). The only module of `rewardmodel` that imports torch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from rationalrewards.rewardmodel.backends.base import Completion, CompletionBackend, MessageBuilder
from rationalrewards.rewardmodel.errors import RewardModelError, RewardServerError
from rationalrewards.rewardmodel.images import load_pil
from rationalrewards.rewardmodel.prompts import Message, PromptProfile, declared_profile, resolve_profile
from rationalrewards.rewardmodel.release_format import TEST_TIME_MAX_TOKENS

log = structlog.get_logger(__name__)


def _to_hf_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """OpenAI-style parts (data-URL images) -> the chat-template form transformers processors read (PIL images)."""
    converted = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            converted.append({"role": message["role"], "content": [{"type": "text", "text": content}]})
            continue
        parts = []
        for part in content:
            if part["type"] == "image_url":
                parts.append({"type": "image", "image": load_pil(part["image_url"]["url"])})
            else:
                parts.append({"type": "text", "text": part["text"]})
        converted.append({"role": message["role"], "content": parts})
    return converted


@dataclass(frozen=True)
class LocalGeneration:
    """How the in-process critic generates, whether it loaded a checkpoint or wraps a model in memory."""

    device: str = "cpu"
    max_new_tokens: int = TEST_TIME_MAX_TOKENS
    batch_size: int = 4
    temperature: float = 0.1
    seed: int = 0
    prompts: str = "auto"

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")


class TransformersRewardModel(CompletionBackend):
    """A `RewardModel` and `Teacher` that runs a Qwen-VL checkpoint in this process."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        max_new_tokens: int = TEST_TIME_MAX_TOKENS,
        batch_size: int = 4,
        temperature: float = 0.1,
        seed: int = 0,
        prompts: str = "auto",
    ) -> None:
        """`prompts`: the prompt profile (`house`, `release`, or `auto`: what the directory's `rationalrewards.json`
        declares, else the release's format when the directory's name says RationalRewards)."""
        import torch
        from transformers import AutoConfig, AutoModelForImageTextToText

        from rationalrewards.rewardmodel.tiny import load_processor

        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise RewardModelError(f"model directory not found: {model_dir} (only local directories are loaded)")
        if not any(model_dir.glob("*.safetensors")):
            raise RewardModelError(f"{model_dir} holds no *.safetensors weights; pickle checkpoints are not loaded")
        torch_dtype = getattr(torch, dtype, None)
        if not isinstance(torch_dtype, torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16")
        config = AutoConfig.from_pretrained(model_dir, trust_remote_code=False)
        processor = load_processor(model_dir, family=config.model_type)
        model: Any = AutoModelForImageTextToText.from_pretrained(
            model_dir, trust_remote_code=False, use_safetensors=True, dtype=torch_dtype
        )
        generation = LocalGeneration(device, max_new_tokens, batch_size, temperature, seed, prompts)
        self._attach(model.to(device).eval(), processor, str(model_dir), declared_profile(model_dir), generation)
        log.info("local_critic.loaded", model=self.model_name, device=device, dtype=dtype)

    @classmethod
    def from_model(cls, model: Any, processor: Any, *, name: str, **settings: Any) -> TransformersRewardModel:
        """A critic over a model already in memory (a student being trained): same messages, template and parsing
        as one loaded from its directory; `settings` as `LocalGeneration` takes them (greedy and the house prompts
        unless given). The caller keeps the model in train or eval mode as it needs."""
        critic = cls.__new__(cls)
        defaults: dict[str, Any] = {"temperature": 0.0, "prompts": "house"}
        critic._attach(model, processor, name, None, LocalGeneration(**(defaults | settings)))
        return critic

    def _attach(self, model: Any, processor: Any, name: str, declared: str | None, generation: LocalGeneration) -> None:
        self.model_name = self.name = name
        self.prompts = generation.prompts
        self.declared_profile = declared
        self.prompt_profile()  # an unknown profile fails here, not at the first request
        self.processor = processor
        self.model = model
        self.device = generation.device
        self.max_new_tokens = generation.max_new_tokens
        self.batch_size = generation.batch_size
        self.temperature = generation.temperature
        self.seed = generation.seed
        self._lock = asyncio.Lock()  # one generate at a time: the model is not re-entrant

    def prompt_profile(self) -> PromptProfile:
        return resolve_profile(self.prompts, self.model_name, self.declared_profile)

    def _generate(self, batch: list[list[Message]]) -> list[Completion]:
        import torch

        torch.manual_seed(self.seed)
        inputs = self.processor.apply_chat_template(
            [_to_hf_messages(m) for m in batch],
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            add_generation_prompt=True,
            processor_kwargs={"padding": True},
        ).to(self.device)
        sampling = (
            {"do_sample": True, "temperature": self.temperature} if self.temperature > 0 else {"do_sample": False}
        )
        with torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, **sampling)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos])
        completions = []
        for row in new_tokens.tolist():
            stopped = any(token in eos_ids for token in row)
            text = self.processor.tokenizer.decode(row, skip_special_tokens=True)
            usage = {"prompt_tokens": int(inputs["input_ids"].shape[1]), "completion_tokens": len(row)}
            completions.append(
                Completion(text=text, finish_reason="stop" if stopped else "length", model=self.model_name, usage=usage)
            )
        return completions

    async def _complete_many(self, builders: Sequence[MessageBuilder]) -> list[Completion | RewardServerError]:
        results: list[Completion | RewardServerError] = []
        async with self._lock:
            for start in range(0, len(builders), self.batch_size):
                batch = [build() for build in builders[start : start + self.batch_size]]
                results += await asyncio.to_thread(self._generate, batch)
        return results


__all__ = ["TransformersRewardModel"]
