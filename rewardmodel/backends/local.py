"""In-process critic for offline and CPU use: a VLM (Qwen2-VL / Qwen2.5-VL / Qwen3-VL families), or a text causal LM
that reads each image as a description (`describe_image`, e.g. the sketch world's perception transcripts).

Loads from a local directory only, safetensors only, `trust_remote_code=False`. Generation runs in a worker thread so
the event loop stays free; requests are batched (left padding). The only module of `rewardmodel` that imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from rationalrewards.plumbing.batching import MicroBatcher
from rationalrewards.rewardmodel._release_format import TEST_TIME_MAX_TOKENS
from rationalrewards.rewardmodel.backends.base import Completion, CompletionBackend, MessageBuilder
from rationalrewards.rewardmodel.errors import RewardModelError, RewardServerError
from rationalrewards.rewardmodel.images import load_pil
from rationalrewards.rewardmodel.prompts import (
    AnyRequest,
    Message,
    PromptProfile,
    build_messages,
    declared_greedy,
    declared_profile,
    resolve_profile,
)

log = structlog.get_logger(__name__)


def _to_hf_messages(messages: list[Message]) -> list[dict[str, object]]:
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


VISION_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
DescribeImage = Callable[[str], str]  # an image's URL or path -> the text a text model reads in its place


def text_only(messages: Sequence[dict[str, Any]], describe_image: DescribeImage) -> list[dict[str, Any]]:
    """Messages for a text model: every image part replaced, in place, by its description; each turn's parts joined
    into one string (as a Qwen-VL chat template joins them: nothing in between). Training rows get the same text
    (`training.distill_data.describe_row`), so a text student is trained on exactly what it is served."""
    converted = []
    for message in messages:
        content = message["content"]
        if not isinstance(content, str):
            content = "".join(
                part["text"] if part["type"] == "text" else describe_image(_part_url(part)) for part in content
            )
        converted.append({"role": message["role"], "content": content})
    return converted


def _part_url(part: dict[str, Any]) -> str:
    if part["type"] == "image_url":
        return str(part["image_url"]["url"])
    if isinstance(part.get("image"), str):
        return str(part["image"])
    raise ValueError(f"an image part without a path or URL cannot be described for a text model: {part['type']}")


class TextProcessor:
    """A tokenizer dressed as the processor the critic and the distillation collator call: chat template (each turn's
    parts joined into one string), tokenising without images, left padding for batched generation."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> object:
        kwargs |= kwargs.pop("processor_kwargs", None) or {}
        batch = conversation and isinstance(conversation[0], list)
        flat = [_joined(c) for c in conversation] if batch else _joined(conversation)
        return self.tokenizer.apply_chat_template(flat, **kwargs)

    def __call__(self, text: object, images: Any = None, **kwargs: object) -> object:
        if images:
            raise ValueError("a text model takes no images: describe them first (text_only)")
        return self.tokenizer(text, **kwargs)

    def save_pretrained(self, directory: str | Path) -> object:
        return self.tokenizer.save_pretrained(directory)


def _joined(turns: Sequence[dict[str, Any]]) -> list[dict[str, object]]:
    out = []
    for turn in turns:
        content = turn["content"]
        if not isinstance(content, str):
            if any(part["type"] != "text" for part in content):
                raise ValueError("a text model takes no images: describe them first (text_only)")
            content = "".join(part["text"] for part in content)
        out.append({"role": turn["role"], "content": content})
    return out


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
    """A `RewardModel` and `Teacher` that runs a Qwen-VL checkpoint, or a text causal LM with `describe_image`, in
    this process."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        max_new_tokens: int = TEST_TIME_MAX_TOKENS,
        batch_size: int = 4,
        temperature: float | None = None,
        seed: int = 0,
        prompts: str = "auto",
        describe_image: DescribeImage | None = None,
    ) -> None:
        """`prompts`: the prompt profile (`house`, `release`, or `auto`: what the directory's `rationalrewards.json`
        declares, else the release's format when the directory's name says RationalRewards). `describe_image`: for a
        text model (any local causal LM), the text it reads in place of each image."""
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText, AutoTokenizer

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
        model: Any
        if config.model_type in VISION_FAMILIES:
            processor: Any = load_processor(model_dir, family=config.model_type)
            model = AutoModelForImageTextToText.from_pretrained(
                model_dir, trust_remote_code=False, use_safetensors=True, dtype=torch_dtype
            )
        elif describe_image is None:
            raise RewardModelError(
                f"{model_dir} is a {config.model_type!r} text model: it reads images only as text "
                "(pass describe_image=, e.g. the sketch world's perception transcripts)"
            )
        else:
            processor = TextProcessor(AutoTokenizer.from_pretrained(model_dir))
            model = AutoModelForCausalLM.from_pretrained(
                model_dir, trust_remote_code=False, use_safetensors=True, dtype=torch_dtype
            )
        if temperature is None:  # greedy for a student that says so (`rationalrewards.json`), else the release's 0.1
            temperature = 0.0 if declared_greedy(model_dir) else 0.1
        generation = LocalGeneration(device, max_new_tokens, batch_size, temperature, seed, prompts)
        self.describe_image = describe_image if config.model_type not in VISION_FAMILIES else None
        self._attach(model.to(device).eval(), processor, str(model_dir), declared_profile(model_dir), generation)
        log.info("local_critic.loaded", model=self.model_name, device=device, dtype=dtype)

    @classmethod
    def from_model(
        cls,
        model: object,
        processor: Any,
        *,
        name: str,
        describe_image: DescribeImage | None = None,
        **settings: object,
    ) -> TransformersRewardModel:
        """A critic over a model already in memory (a student being trained): same messages, template and parsing
        as one loaded from its directory; `settings` as `LocalGeneration` takes them (greedy and the house prompts
        unless given). The caller keeps the model in train or eval mode as it needs."""
        critic = cls.__new__(cls)
        critic.describe_image = describe_image
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
        # Requests of concurrent callers (a GCR run's prompts and candidates) share `generate` calls of up to
        # `batch_size`; calls run one at a time, as the model is not re-entrant. Greedy decoding gives each request
        # the same answer whatever batch it lands in (up to float rounding of the padded batch).
        self._batcher: MicroBatcher[list[Message], Completion] = MicroBatcher(
            self._generate, max_size=generation.batch_size, max_wait=0.02
        )

    def prompt_profile(self) -> PromptProfile:
        return resolve_profile(self.prompts, self.model_name, self.declared_profile)

    def messages(self, request: AnyRequest) -> list[Message]:
        if self.describe_image is None:
            return super().messages(request)
        # A text model reads descriptions of images, which are made from the images' files: no base64 round trip.
        return build_messages(request, profile=self.prompt_profile(), image_url=lambda ref: ref.uri)

    def _generate(self, batch: list[list[Message]]) -> list[Completion]:
        import torch

        torch.manual_seed(self.seed)
        describe = self.describe_image
        inputs = self.processor.apply_chat_template(
            [_to_hf_messages(m) if describe is None else text_only(m, describe) for m in batch],
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
        return list(await self._batcher.submit([build() for build in builders]))


__all__ = ["VISION_FAMILIES", "DescribeImage", "TextProcessor", "TransformersRewardModel", "text_only"]
