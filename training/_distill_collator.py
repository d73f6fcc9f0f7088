"""Rows -> training batches, built the way the critic is later served.

The request turns go through the processor's own chat template with the generation prompt, and their images through
the same image processor, exactly as `TransformersRewardModel` (and vLLM) prepare a request before generating; the
answer follows as its own tokens plus the end-of-turn token, i.e. the tokens the model must generate. Prompt and answer
are tokenised apart and joined, so the training sequence is token for token what serving sees: the prompt's ids, then
the generated ids. Labels are the answer's tokens only (-100 on the prompt, the images and the padding).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rationalrewards.rewardmodel.images import decode_image, read_file_bytes
from rationalrewards.training.distill_data import CritiqueRow, DataReport, ImageSource, image_size

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

IGNORE = -100  # the label value torch's cross-entropy skips
# A decision in an answer: the value after a score line (`## Score: 3.5`, `Score A: 2`), a re-prediction's
# `Answer: B`, or a winner line: what the scores and the preference are read from.
DECISION = re.compile(r"(?:Score(?: [AB])?|Answer|Winner)[^\S\n]*:[^\S\n]*([^\n]*\S)")


def load_image(source: ImageSource) -> PILImage:
    """A row's image as RGB, through the project's image intake (the same limits as every other reader)."""
    data = source if isinstance(source, bytes) else read_file_bytes(source)
    return decode_image(data, "an image of a row" if isinstance(source, bytes) else source).convert("RGB")


@dataclass
class Lengths:
    prompt: int
    answer: int


@dataclass
class CritiqueCollator:
    """Collates `{"row": CritiqueRow | index into rows}` items. `max_length` truncates the answer's end (rows the
    caller chose to drop were dropped before training; see `fit_to_length`). Times itself: `seconds` spent collating,
    over `calls`."""

    processor: Any
    max_length: int | None = None
    rows: Sequence[CritiqueRow] = ()
    decision_weight: float = 1.0  # != 1: the batch carries `decision_mask`, the answer's decision-bearing tokens
    seconds: float = 0.0
    calls: int = 0
    _answer_suffix: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self._answer_suffix = self.processor.tokenizer.eos_token or ""

    def prompt_text(self, row: CritiqueRow) -> str:
        """The request as serving renders it: the chat template with the generation prompt."""
        return str(self.processor.apply_chat_template(row.turns, add_generation_prompt=True, tokenize=False))

    def answer_ids(self, row: CritiqueRow) -> list[int]:
        tokens = self.processor.tokenizer(row.answer + self._answer_suffix, add_special_tokens=False)
        return list(tokens["input_ids"])

    def decision_tokens(self, row: CritiqueRow) -> list[int]:
        """1 for each answer token that overlaps a decision (the value after a Score, Answer or Winner marker), else
        0, aligned with `answer_ids` (a fast tokenizer's character offsets)."""
        text = row.answer + self._answer_suffix
        tokens = self.processor.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        spans = [m.span(1) for m in DECISION.finditer(row.answer)]  # the end-of-turn token is no decision
        return [int(any(s < end and start < e for s, e in spans)) for start, end in tokens["offset_mapping"]]

    def image_tokens(self, source: ImageSource) -> int:
        """The placeholder tokens one image expands to (from its header: no decoding)."""
        image_processor = self.processor.image_processor
        width, height = image_size(source)
        merge = int(getattr(image_processor, "merge_size", 1) or 1)
        return int(image_processor.get_number_of_image_patches(height, width)) // (merge * merge)

    def lengths(self, row: CritiqueRow) -> Lengths:
        text_ids = self.processor.tokenizer(self.prompt_text(row), add_special_tokens=False)["input_ids"]
        expanded = sum(self.image_tokens(source) - 1 for source in row.images)  # one placeholder each already
        return Lengths(prompt=len(text_ids) + expanded, answer=len(self.answer_ids(row)))

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, object]:
        import torch

        started = time.perf_counter()
        rows = [item["row"] if isinstance(item["row"], CritiqueRow) else self.rows[int(item["row"])] for item in items]
        sequences, labels, token_types, decisions = [], [], [], []
        pixel_values, grids = [], []
        for row in rows:
            images = [load_image(source) for source in row.images]
            prompt = self.processor(
                text=[self.prompt_text(row)], images=images or None, return_tensors="pt", add_special_tokens=False
            )
            prompt_ids = prompt["input_ids"][0].tolist()
            answer = self.answer_ids(row)
            if self.max_length is not None:
                answer = answer[: max(0, self.max_length - len(prompt_ids))]
            sequences.append(prompt_ids + answer)
            labels.append([IGNORE] * len(prompt_ids) + answer)
            if self.decision_weight != 1.0:
                decisions.append([0] * len(prompt_ids) + self.decision_tokens(row)[: len(answer)])
            if "mm_token_type_ids" in prompt:
                token_types.append(prompt["mm_token_type_ids"][0].tolist() + [0] * len(answer))
            if images:
                pixel_values.append(prompt["pixel_values"])
                grids.append(prompt["image_grid_thw"])
        width = max(len(s) for s in sequences)
        pad = self.processor.tokenizer.pad_token_id
        batch: dict[str, object] = {
            "input_ids": torch.tensor([s + [pad] * (width - len(s)) for s in sequences]),
            "attention_mask": torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences]),
            "labels": torch.tensor([lab + [IGNORE] * (width - len(lab)) for lab in labels]),
        }
        if decisions:
            batch["decision_mask"] = torch.tensor([d + [0] * (width - len(d)) for d in decisions])
        if token_types:
            batch["mm_token_type_ids"] = torch.tensor([t + [0] * (width - len(t)) for t in token_types])
        if pixel_values:
            batch["pixel_values"] = torch.cat(pixel_values)
            batch["image_grid_thw"] = torch.cat(grids)
        self.seconds += time.perf_counter() - started
        self.calls += 1
        return batch


def fit_to_length(
    rows: Sequence[CritiqueRow], collator: CritiqueCollator, max_length: int | None, policy: str, report: DataReport
) -> list[CritiqueRow]:
    """Rows that fit `max_length`. A longer row is dropped (`too_long`), or under `truncate` kept with its answer cut
    (counted in `report.truncated`); one whose request alone is too long is always dropped (`request_too_long`):
    cutting the request would cut image tokens. Unreadable images are dropped too (`bad_image`)."""
    kept = []
    for row in rows:
        try:
            if max_length is None:  # no length to fit, but every image is still checked before training starts
                for source in row.images:
                    image_size(source)
                kept.append(row)
                continue
            size = collator.lengths(row)
        except (OSError, ValueError) as e:
            report.drop("bad_image", row.origin, str(e))
            continue
        if size.prompt >= max_length:
            report.drop("request_too_long", row.origin, f"{size.prompt} tokens before the answer")
        elif size.prompt + size.answer > max_length and policy != "truncate":
            report.drop("too_long", row.origin, f"{size.prompt + size.answer} tokens")
        else:
            report.truncated += size.prompt + size.answer > max_length
            kept.append(row)
    return kept


__all__ = ["IGNORE", "CritiqueCollator", "fit_to_length", "load_image"]
