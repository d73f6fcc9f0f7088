"""An in-process text LLM as a `CompletionBackend` (for `LLMRefiner` and text-only teacher prompts).

Loads a local causal-LM directory (safetensors only, `trust_remote_code=False`) and answers with its chat template.
Image parts in the messages are replaced by a note: a text model cannot see them. Like every backend, `complete`
returns a `Completion` whose finish reason says whether the answer was cut at `max_new_tokens`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rationalrewards.rewardmodel.backends.base import Completion, CompletionBackend, MessageBuilder
from rationalrewards.rewardmodel.errors import RewardModelError, RewardServerError
from rationalrewards.rewardmodel.prompts import Message

IMAGE_NOTE = "[image omitted: text-only model]"


def text_messages(messages: list[Message]) -> list[dict[str, object]]:
    """OpenAI-style messages as plain-text chat turns; image parts become `IMAGE_NOTE`."""
    converted = []
    for message in messages:
        content = message["content"]
        if not isinstance(content, str):
            content = "\n".join(p["text"] if p["type"] == "text" else IMAGE_NOTE for p in content)
        converted.append({"role": message["role"], "content": content})
    return converted


class TransformersChatModel(CompletionBackend):
    def __init__(
        self, model_dir: str | Path, *, device: str = "cpu", max_new_tokens: int = 256, temperature: float = 0.0
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model_dir = Path(model_dir)
        if not model_dir.is_dir() or not any(model_dir.glob("*.safetensors")):
            raise RewardModelError(f"{model_dir} is not a local model directory with *.safetensors weights")
        self.tokenizer: Any = AutoTokenizer.from_pretrained(model_dir)
        model: Any = AutoModelForCausalLM.from_pretrained(model_dir, trust_remote_code=False, use_safetensors=True)
        self.model = model.to(device).eval()
        self.device, self.max_new_tokens, self.temperature = device, max_new_tokens, temperature
        self.name = str(model_dir)
        self._lock = asyncio.Lock()

    def _generate(self, messages: list[Message]) -> Completion:
        import torch

        inputs = self.tokenizer.apply_chat_template(
            text_messages(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.device)
        sampling = (
            {"do_sample": True, "temperature": self.temperature} if self.temperature > 0 else {"do_sample": False}
        )
        with torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, **sampling)
        new = output[0, inputs["input_ids"].shape[1] :].tolist()
        stopped = self.tokenizer.eos_token_id in new
        usage = {"prompt_tokens": int(inputs["input_ids"].shape[1]), "completion_tokens": len(new)}
        return Completion(
            text=self.tokenizer.decode(new, skip_special_tokens=True),
            finish_reason="stop" if stopped else "length",
            model=self.name,
            usage=usage,
        )

    async def _complete_many(self, builders: Sequence[MessageBuilder]) -> list[Completion | RewardServerError]:
        results: list[Completion | RewardServerError] = []
        async with self._lock:  # one generate at a time: the model is not re-entrant
            for build in builders:
                results.append(await asyncio.to_thread(self._generate, build()))
        return results
