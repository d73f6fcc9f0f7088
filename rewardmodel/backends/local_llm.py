"""An in-process text LLM with the `complete(messages)` contract (for `LLMRefiner` and text-only teacher prompts).

Loads a local causal-LM directory (safetensors only, `trust_remote_code=False`) and answers with its chat template.
Image parts in the messages are dropped with a note: a text model cannot see them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from rationalrewards.rewardmodel.errors import RewardModelError
from rationalrewards.rewardmodel.prompts import Message


class TransformersChatModel:
    def __init__(self, model_dir: str | Path, *, device: str = "cpu", max_new_tokens: int = 256, temperature: float = 0.0) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model_dir = Path(model_dir)
        if not model_dir.is_dir() or not any(model_dir.glob("*.safetensors")):
            raise RewardModelError(f"{model_dir} is not a local model directory with *.safetensors weights")
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, trust_remote_code=False, use_safetensors=True).to(device).eval()
        self.device, self.max_new_tokens, self.temperature = device, max_new_tokens, temperature
        self.name = str(model_dir)
        self._lock = asyncio.Lock()

    @staticmethod
    def _text_messages(messages: list[Message]) -> list[dict[str, Any]]:
        converted = []
        for message in messages:
            content = message["content"]
            if isinstance(content, str):
                converted.append({"role": message["role"], "content": content})
                continue
            text = "\n".join(p["text"] if p["type"] == "text" else "[image omitted: text-only model]" for p in content)
            converted.append({"role": message["role"], "content": text})
        return converted

    def _generate(self, messages: list[Message]) -> str:
        import torch

        ids = self.tokenizer.apply_chat_template(self._text_messages(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True).to(self.device)
        sampling = {"do_sample": True, "temperature": self.temperature} if self.temperature > 0 else {"do_sample": False}
        with torch.inference_mode():
            output = self.model.generate(**ids, max_new_tokens=self.max_new_tokens, **sampling)
        return self.tokenizer.decode(output[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)

    async def complete(self, messages: list[Message]) -> str:
        async with self._lock:
            return await asyncio.to_thread(self._generate, messages)
