"""`DistillConfig`: `DistillOptions` (our knobs and the paper's recipe, `training/distill_options.py`) on top of trl's
`SFTConfig`, so every trl and transformers training argument is there too. `rationalrewards distill` builds it from
its flags (and `--trl NAME=VALUE` for trl's own); in Python, `DistillConfig(model=..., data=[...], output_dir=...)`.
"""

from __future__ import annotations

from dataclasses import dataclass

from trl import SFTConfig

from rationalrewards.training.distill_options import (
    LANGUAGE_MODEL_PROJECTIONS,
    TEXT_MODEL_PROJECTIONS,
    DistillOptions,
)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@dataclass
class DistillConfig(DistillOptions, SFTConfig):  # type: ignore[misc]  # report_to: a list here, trl also takes a str
    """SFT of a vision-language (or text) critic on PARROT rows."""

    def __post_init__(self) -> None:
        self.check_options()
        cuda = _cuda()
        # bf16 and gradient checkpointing are GPU choices: on a CPU they only slow float32 training down.
        if self.bf16 is None:
            self.bf16 = cuda and not self.fp16
        if not cuda:
            self.use_cpu = True  # also what makes torchrun's processes one gloo DDP group on a CPU machine
        if self.activation_checkpointing is None:  # (trl's `gradient_checkpointing=True` default is its alias)
            self.activation_checkpointing = cuda
        SFTConfig.__post_init__(self)


__all__ = ["LANGUAGE_MODEL_PROJECTIONS", "TEXT_MODEL_PROJECTIONS", "DistillConfig"]
