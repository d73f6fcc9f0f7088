"""Held-out evaluation during distillation: the student judges held-out pairs through our own critic backend.

The student is wrapped as a `TransformersRewardModel` (`from_model`): the same chat template, image processing,
generation and parser as when it is served, so the figures mean what they will mean in production. Each pair is sent
as the row's own request turns (the exact text the student is trained on), and its answer parsed as a pairwise
judgement. Logged beside the loss: pairwise accuracy (ties and abstentions apart, `scoring.pairwise_accuracy`), the
parse rate (answers that parse, among those not cut off), the abstention rate, decisive-pair accuracy and the share of
answers that call a tie (beside the share of tie labels).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from typing import Any

from transformers import TrainerCallback

from rationalrewards.plumbing.aio import run_sync
from rationalrewards.rewardmodel.backends.base import pairwise_from_completion
from rationalrewards.rewardmodel.prompts import Message
from rationalrewards.rewardmodel.schemas import Abstention
from rationalrewards.rewardmodel.scoring import pairwise_accuracy
from rationalrewards.training.distill_data import CritiqueRow, ImageSource


def _image_url(source: ImageSource) -> str:
    if isinstance(source, bytes):
        from rationalrewards.rewardmodel.images import png_bytes
        from rationalrewards.training._distill_collator import load_image

        data = source if source.startswith(b"\x89PNG") else png_bytes(load_image(source))
        return "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return source  # a path: the backend reads it


def request_messages(row: CritiqueRow) -> list[Message]:
    """The row's request turns as chat messages with `image_url` parts, in the row's own order."""
    images = iter(row.images)
    return [
        {
            "role": turn["role"],
            "content": [
                part
                if part["type"] == "text"
                else {"type": "image_url", "image_url": {"url": _image_url(next(images))}}
                for part in turn["content"]
            ],
        }
        for turn in row.turns
    ]


def evaluate_student(
    model: Any, processor: object, rows: Sequence[CritiqueRow], *, max_new_tokens: int, batch_size: int = 16
) -> dict[str, float | int | None]:
    """Pairwise accuracy, parse rate and abstention rate of `model` on labelled pairwise rows."""
    from rationalrewards.rewardmodel.backends.local import TransformersRewardModel

    pairs = [row for row in rows if row.kind == "pairwise" and row.label is not None]
    if not pairs:
        return {"eval_pairs": 0}
    device = str(next(model.parameters()).device)
    critic = TransformersRewardModel.from_model(
        model, processor, name="student", device=device, max_new_tokens=max_new_tokens, batch_size=batch_size
    )
    was_training = model.training
    model.eval()
    started = time.perf_counter()
    try:
        completions = run_sync(critic.complete_all([request_messages(row) for row in pairs]))
    finally:
        model.train(was_training)
    judgements = [pairwise_from_completion(c, row.task, row.key) for c, row in zip(completions, pairs, strict=True)]
    labels = [row.label for row in pairs if row.label is not None]
    accuracy = pairwise_accuracy(judgements, labels)
    cut = sum(c.truncated for c in completions)
    # Parse rate over the answers that ended on their own (a truncated one that happens to parse is not counted on
    # either side: the rate once read 1.33 with it on top and not below).
    parsed = sum(
        not isinstance(j, Abstention) and not c.truncated for j, c in zip(judgements, completions, strict=True)
    )
    return {
        "eval_pairs": len(pairs),
        "eval_pairwise_accuracy": accuracy.accuracy,
        # Decisive pairs alone, and how often the student answers "tie": a student that defaults to a tie when unsure
        # can look fine on accuracy over all pairs and learn nothing of the comparison.
        "eval_decisive_accuracy": accuracy.accuracy_decisive,
        "eval_tie_rate": accuracy.predicted_ties / accuracy.judged if accuracy.judged else None,
        "eval_label_tie_rate": accuracy.label_ties / len(pairs),
        "eval_parse_rate": parsed / (len(pairs) - cut) if len(pairs) > cut else None,
        "eval_abstention_rate": accuracy.abstentions / len(pairs),
        "eval_seconds": round(time.perf_counter() - started, 2),
    }


class HeldOutEvaluation(TrainerCallback):
    """Every `every` optimizer steps (0: only at the end) and when training ends, on the main process only."""

    def __init__(
        self, rows: Sequence[CritiqueRow], processor: object, *, every: int, pairs: int, max_new_tokens: int
    ) -> None:
        self.rows = [row for row in rows if row.kind == "pairwise" and row.label is not None][:pairs]
        self.processor, self.every, self.max_new_tokens = processor, every, max_new_tokens
        self.trainer: Any = None  # set by the trainer that owns it: final metrics go out through `trainer.log`
        self.history: list[dict[str, object]] = []
        self.seconds = 0.0  # spent evaluating (a time budget does not count it)
        self.pending: dict[str, object] = {}  # metrics for the trainer's next log line (beside that step's loss)
        self._last_step = -1

    def _run(self, state: Any, model: Any) -> None:
        if not self.rows or not state.is_world_process_zero or state.global_step == self._last_step:
            return
        self._last_step = state.global_step
        started = time.monotonic()
        metrics = evaluate_student(model, self.processor, self.rows, max_new_tokens=self.max_new_tokens)
        self.seconds += time.monotonic() - started
        self.history.append({"step": state.global_step, **metrics})
        self.pending = {k: v for k, v in metrics.items() if v is not None}

    def take_pending(self) -> dict[str, Any]:
        pending, self.pending = self.pending, {}
        return pending

    def on_step_end(self, args: object, state: Any, control: Any, model: Any = None, **kwargs: object) -> object:
        if self.every and state.global_step % self.every == 0:
            self._run(state, model)
            control.should_log = True  # so the figures are logged at this step, beside its loss
        return control

    def on_train_end(self, args: object, state: Any, control: object, model: Any = None, **kwargs: object) -> None:
        self._run(state, model)
        if self.pending and self.trainer is not None:
            self.trainer.log(self.take_pending())


class TimeBudget(TrainerCallback):
    """Stops training (and saves a checkpoint) once `minutes` of training have passed. Time the held-out evaluation
    spends (`excluded`, e.g. a `HeldOutEvaluation`) does not count: a curve point of unparseable answers once took a
    quarter of a 10-minute budget, so the budget bought fewer steps the worse the student was."""

    def __init__(self, minutes: float, excluded: HeldOutEvaluation | None = None) -> None:
        self.seconds, self.started = minutes * 60.0, time.monotonic()
        self.excluded = excluded
        self.hit = False

    def on_train_begin(self, args: object, state: Any, control: object, **kwargs: object) -> None:
        self.started = time.monotonic()

    def on_step_end(self, args: object, state: Any, control: Any, **kwargs: object) -> object:
        spent = time.monotonic() - self.started - (self.excluded.seconds if self.excluded is not None else 0.0)
        if spent >= self.seconds:
            self.hit = True
            control.should_training_stop = True
            control.should_save = True
        return control


__all__ = ["HeldOutEvaluation", "TimeBudget", "evaluate_student", "request_messages"]
