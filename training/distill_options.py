"""`DistillOptions`: our own knobs of PARROT's distillation phase (paper: "PARROT", phase 3) and the paper's recipe
as defaults for trl's. Light on purpose (no trl, no torch): `rationalrewards distill --help` is generated from it in
well under a second. `DistillConfig` (`training/distill_config.py`) is these options on top of trl's `SFTConfig`.

Defaults are the paper's recipe (full fine-tune with the vision tower frozen, lr 1e-5, cosine, warmup 5%, 3 epochs,
batch 4 x grad-accum 4, weight decay 1e-6), bf16 on a GPU and float32 on a CPU. Departures: LoRA is one flag away,
rows longer than `max_length` are dropped or truncated by choice and always counted, and a held-out split (by prompt)
is scored through our own critic backend during training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rationalrewards.plumbing.choices import check_choices
from rationalrewards.rewardmodel.tiny import Family

OverlongPolicy = Literal["drop", "truncate"]
# LoRA on the language model's projections only: a Qwen-VL vision tower has MLP layers with the same names.
LANGUAGE_MODEL_PROJECTIONS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
# A text student has no vision tower: every attention and MLP projection.
TEXT_MODEL_PROJECTIONS = r".*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


@dataclass(kw_only=True)
class DistillOptions:
    """SFT of a critic on PARROT rows: the student, the data, evaluation and limits, and the paper's recipe."""

    # -- the student --
    model: str | None = field(
        default=None,
        metadata={
            "help": "Student: a local Qwen2-VL / Qwen2.5-VL / Qwen3-VL directory, or any local causal LM directory "
            "(a text student, e.g. SmolLM2: it reads each sketch image as a perception transcript). Safetensors, "
            "no remote code."
        },
    )
    perception_world: str = field(
        default="sketch",
        metadata={"help": "Text students: the world whose images they read as transcripts (agents/world.py)."},
    )
    transcript_noise: float = field(
        default=0.0,
        metadata={
            "help": "Text students: perception noise of the transcript each image is read as (0 reads the scene "
            "graph exactly; a stand-in for a vision encoder's errors, see sketch.transcript)."
        },
    )
    tiny: bool = field(
        default=False,
        metadata={"help": "Build a tiny random Qwen-VL student from config in code (CPU runs of the whole path)."},
    )
    tiny_family: Family = field(default="qwen2_vl", metadata={"help": "Family of the --tiny student."})
    lora: bool = field(default=False, metadata={"help": "Train a LoRA adapter (peft) instead of the full model."})
    lora_r: int = field(default=64, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=128, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_target_modules: str = field(
        default=LANGUAGE_MODEL_PROJECTIONS,
        metadata={
            "help": "Modules LoRA adapts: a regex over module names (default: the language model's projections)."
        },
    )
    freeze_vision: bool = field(
        default=True, metadata={"help": "Freeze the vision tower and projector (the paper's recipe)."}
    )
    train_layers: int = field(
        default=0,
        metadata={
            "help": "Full fine-tune of only the top N decoder layers and the final norm (0: every layer). Backward "
            "then stops N layers down: on a CPU a step of SmolLM2 with N=4 takes about half the time of all 30."
        },
    )
    # -- the data --
    data: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Training rows: a PARROT output directory (pairwise.jsonl + pointwise.jsonl), or a JSONL / Parquet "
            "file or saved datasets directory of `messages` + `images` rows. Repeat for several."
        },
    )
    pairwise_share: float | None = field(
        default=None,
        metadata={"help": "Share of pairwise rows in the training mix (0-1; default: the rows as they come)."},
    )
    eval_data: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Held-out rows given explicitly (same forms as --data): evaluated instead of a share of the "
            "training prompts; no training row may share a prompt with them."
        },
    )
    eval_share: float = field(
        default=0.05, metadata={"help": "Share of prompts held out for evaluation (a prompt is never on both sides)."}
    )
    max_pixels: int = field(
        default=1024 * 28 * 28, metadata={"help": "Largest image size in pixels; larger images are scaled down."}
    )
    overlong: OverlongPolicy = field(
        default="drop",
        metadata={"help": "Rows longer than --max-length: drop or truncate (the answer's end). Counted either way."},
    )
    decision_loss_weight: float = field(
        default=1.0,
        metadata={
            "help": "Weight of the decision-bearing tokens in the loss (the values after Score/Answer/Winner lines), the "
            "rest 1; the plain loss is logged beside it (loss_plain). Score tokens are a few percent of an answer."
        },
    )
    # -- evaluation and limits --
    eval_every: int = field(
        default=200, metadata={"help": "Score the held-out pairs with the student every N steps (0: only at the end)."}
    )
    eval_pairs: int = field(default=64, metadata={"help": "Held-out pairs scored at each evaluation."})
    eval_max_new_tokens: int = field(default=2048, metadata={"help": "Tokens the student may write per judgement."})
    time_budget: float | None = field(
        default=None,
        metadata={"help": "Stop (and save) after this many minutes of training (held-out evaluations not counted)."},
    )
    # -- the paper's recipe, overriding trl's defaults --
    learning_rate: float = field(default=1e-5, metadata={"help": "Peak learning rate (1e-5 in the paper)."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Learning-rate schedule (cosine)."})
    warmup_steps: float = field(default=0.05, metadata={"help": "Warm-up: steps, or a share of all steps if < 1."})
    num_train_epochs: float = field(default=3.0, metadata={"help": "Epochs (3 in the paper)."})
    max_steps: int = field(
        default=-1, metadata={"help": "Stop after this many optimizer steps (-1: the epochs decide)."}
    )
    seed: int = field(default=42, metadata={"help": "Seed of initialisation, data order and held-out split."})
    per_device_train_batch_size: int = field(default=4, metadata={"help": "Rows per device and step."})
    gradient_accumulation_steps: int = field(default=4, metadata={"help": "Steps accumulated per optimizer update."})
    weight_decay: float = field(default=1e-6, metadata={"help": "Weight decay (1e-6)."})
    max_length: int | None = field(default=8192, metadata={"help": "Most tokens per row, image tokens included."})
    report_to: list[str] = field(
        default_factory=lambda: ["tensorboard"],
        metadata={"help": "Loggers: tensorboard (offline, the default), trackio, wandb, or none."},
    )
    save_steps: float = field(default=200, metadata={"help": "Checkpoint every N steps (resume picks the last)."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept."})
    logging_steps: float = field(default=5, metadata={"help": "Log the loss every N steps."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Kept False: the collator reads the rows' own columns.", "cli": False}
    )

    def __post_init__(self) -> None:
        self.check_options()

    def check_options(self) -> None:
        """Our own fields' rules (the config's `__post_init__` adds the device defaults and trl's checks)."""
        if self.model is None and not self.tiny:
            raise ValueError("give the student: --model DIR (a local Qwen-VL directory) or --tiny")
        if self.model is not None and self.tiny:
            raise ValueError("--model and --tiny are exclusive: the tiny student is built in code")
        check_choices(self)
        if self.pairwise_share is not None and not 0.0 <= self.pairwise_share <= 1.0:
            raise ValueError("--pairwise-share is a share between 0 and 1")
        if not 0.0 <= self.eval_share < 1.0:
            raise ValueError("--eval-share is a share between 0 and 1 (0: no held-out prompts)")
        if self.max_pixels < 28 * 28:
            raise ValueError("--max-pixels must be at least 784 (one 28x28 patch)")
        if self.lora_r < 1 or self.lora_alpha < 1:
            raise ValueError("--lora-r and --lora-alpha must be at least 1")
        if self.eval_every < 0 or self.eval_pairs < 0 or self.eval_max_new_tokens < 1:
            raise ValueError("--eval-every and --eval-pairs must be 0 or more, --eval-max-new-tokens at least 1")
        if self.time_budget is not None and self.time_budget <= 0:
            raise ValueError("--time-budget is in minutes and must be positive")
        if self.train_layers < 0:
            raise ValueError("--train-layers must be 0 (every layer) or a positive number of top layers")
        if self.train_layers and self.lora:
            raise ValueError("--train-layers is a full fine-tune of the top layers; LoRA already trains few weights")
        if not self.decision_loss_weight > 0:
            raise ValueError("--decision-loss-weight must be positive")
        if not 0.0 <= self.transcript_noise <= 1.0:
            raise ValueError("--transcript-noise is a level between 0 and 1")
        if self.max_length is not None and self.max_length < 64:
            raise ValueError("--max-length must be at least 64 tokens")

    @property
    def overlong_policy(self) -> OverlongPolicy:
        return "truncate" if self.overlong == "truncate" else "drop"


__all__ = ["LANGUAGE_MODEL_PROJECTIONS", "TEXT_MODEL_PROJECTIONS", "DistillOptions", "OverlongPolicy"]
