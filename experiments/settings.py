"""Every experiment's settings: one dataclass each, help in field metadata (the command line is generated from it),
and `smoke()`, a minutes-long run of every stage for tests. Light on purpose: `--help` imports no torch."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class ScalarRewardSettings:
    per_prompt: int = 24  # pairs per training prompt (256 prompts: 6,144 pairs)
    steps: int = 1500
    batch_size: int = 128
    learning_rate: float = 1e-3
    seed: int = 0
    threads: int = 1


@dataclass(frozen=True)
class GeneratorSettings:
    """Every knob of the generator's training; `smoke()` is a seconds-long run for tests."""

    budget_minutes: float = field(
        default=30.0,
        metadata={"help": "Training time in minutes (the shipped checkpoint: 30 on one thread, 1,825 steps of 64)."},
    )
    per_prompt: int = field(
        default=40, metadata={"help": "Layouts rendered per training prompt (256 prompts x 40 = 10,240 renders)."}
    )
    batch_size: int = field(default=64, metadata={"help": "Images per training step."})
    learning_rate: float = field(default=1e-3, metadata={"help": "AdamW learning rate."})
    warmup_steps: int = field(default=100, metadata={"help": "Linear warm-up steps."})
    ema_max_decay: float = field(
        default=0.999, metadata={"help": "Largest decay of the weights' exponential moving average."}
    )
    guidance_dropout: float = field(
        default=0.1,
        metadata={"help": "Share of training prompts dropped to the empty one (for classifier-free guidance)."},
    )
    explicit_share: float = field(default=0.5, metadata={"help": "Share of training prompts in the explicit phrasing."})
    quality_suffix_share: float = field(
        default=0.1, metadata={"help": "Share of training prompts with a quality suffix."}
    )
    held_out_share: float = field(
        default=0.2, metadata={"help": "Share of prompts held out (colour-class pairs never trained on)."}
    )
    split_seed: int = field(
        default=0,
        metadata={
            "help": "Seed of the held-out split (fixed: the shipped checkpoint and the experiments agree on it)."
        },
    )
    seed: int = field(default=0, metadata={"help": "Initialisation and data-order seed."})
    threads: int = field(default=1, metadata={"help": "CPU threads for training (torch)."})
    checkpoint_minutes: float = field(
        default=5.0, metadata={"help": "Minutes between training checkpoints (a killed run resumes from the last)."}
    )
    sample_steps: int = field(default=20, metadata={"help": "Sampler steps in the evaluation."})
    guidance_scale: float = field(default=3.0, metadata={"help": "Guidance scale in the evaluation."})
    eval_seeds: int = field(default=4, metadata={"help": "Images per prompt in the evaluation."})
    eval_prompts: int | None = field(
        default=None, metadata={"help": "Evaluate only the first N prompts of each set (smoke runs)."}
    )
    max_steps: int | None = field(
        default=None, metadata={"help": "Stop before the budget after this many steps (tests)."}
    )

    def __post_init__(self) -> None:
        if self.budget_minutes <= 0:
            raise ValueError("--budget-minutes must be positive")
        if self.per_prompt < 1 or self.batch_size < 1 or self.eval_seeds < 1:
            raise ValueError("per_prompt, batch_size and eval_seeds must be at least 1")
        for name in ("guidance_dropout", "explicit_share", "quality_suffix_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if not 0.0 < self.held_out_share < 1.0:
            raise ValueError("held_out_share must be between 0 and 1 (exclusive)")

    @classmethod
    def smoke(cls, **overrides: Any) -> GeneratorSettings:
        small = cls(
            budget_minutes=0.5, per_prompt=1, batch_size=16, max_steps=3, sample_steps=2, eval_seeds=1, eval_prompts=8
        )
        return replace(small, **overrides)


@dataclass(frozen=True)
class AblationSettings:
    """Every knob of the experiment; the defaults are the documented run, `smoke()` a minutes-long one for tests."""

    budget_minutes: float = field(
        default=30.0,
        metadata={"help": "Training time of the first student, in minutes; every other student trains as many steps."},
    )
    seeds: tuple[int, ...] = field(
        default=(0, 1), metadata={"help": "A training seed; repeat for several.", "flag": "--seed"}
    )
    train_prompts: int = field(default=1200, metadata={"help": "Training prompts (one pair each)."})
    held_out_prompts: int = field(
        default=400, metadata={"help": "Held-out prompts (one pair each; never seen in training)."}
    )
    teacher_noise: float = field(
        default=0.35, metadata={"help": "The sketch teacher's hallucination rate and perception noise."}
    )
    label_noise: float = field(default=0.05, metadata={"help": "Share of training labels flipped."})
    transcript_noise: float = field(
        default=0.1, metadata={"help": "The students' perception noise (their transcripts of the images)."}
    )
    learning_rate: float = field(
        default=5e-4,
        metadata={
            "help": "Students' learning rate (1e-4 left SmolLM2 without the answer format after 15 steps; 5e-4 reached it)."
        },
    )
    batch_size: int = field(default=8, metadata={"help": "Rows per training step."})
    train_layers: int = field(
        default=4,
        metadata={
            "help": "Fine-tune only the top N layers of the student (half the CPU time of a step for SmolLM2 at 4)."
        },
    )
    max_length: int = field(default=1024, metadata={"help": "Most tokens per training row."})
    evaluations: int = field(
        default=2, metadata={"help": "Held-out curve points during training, besides the final one."}
    )
    curve_pairs: int = field(default=32, metadata={"help": "Held-out pairs scored at each curve point."})
    step_seconds: float = field(
        default=13.0,
        metadata={
            "help": "Expected seconds per training step (measured: top 4 layers, batch 8, 2 threads); spaces the curve."
        },
    )
    pointwise_images: int = field(
        default=100, metadata={"help": "Held-out images for the pointwise text-faithfulness score."}
    )
    max_new_tokens: int = field(default=256, metadata={"help": "Tokens a student may write per judgement."})
    loop_prompts: int = field(default=32, metadata={"help": "Held-out prompts through GCR per critic and preset."})
    loop_presets: tuple[str, ...] = field(
        default=("paper", "deep"), metadata={"help": "GCR presets the students are run through; repeat for several."}
    )
    world_seed: int = field(default=7, metadata={"help": "Seed of the sketch world's pairs."})
    student: str | None = field(
        default=None, metadata={"help": "Base student directory (default: SmolLM2-135M-Instruct, exported offline)."}
    )

    def __post_init__(self) -> None:
        if self.budget_minutes <= 0:
            raise ValueError("--budget-minutes must be positive")
        if not self.seeds:
            raise ValueError("give at least one seed")
        if self.train_prompts < 4 or self.held_out_prompts < 2:
            raise ValueError("need at least 4 training and 2 held-out prompts")
        for name in ("pointwise_images", "evaluations", "loop_prompts"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} cannot be negative")
        if self.curve_pairs < 1 or self.batch_size < 1 or self.max_new_tokens < 1:
            raise ValueError("curve_pairs, batch_size and max_new_tokens must be at least 1")
        for name in ("teacher_noise", "label_noise", "transcript_noise"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")

    @classmethod
    def smoke(cls, **overrides: Any) -> AblationSettings:
        """Minutes on one CPU: a handful of pairs and steps; every stage runs, no figure means anything."""
        small = cls(
            budget_minutes=0.05,
            seeds=(0,),
            train_prompts=24,
            held_out_prompts=6,
            evaluations=1,
            curve_pairs=2,
            pointwise_images=2,
            batch_size=4,
            max_new_tokens=48,
            max_length=512,
            loop_prompts=2,
            loop_presets=("paper",),
        )
        return replace(small, **overrides)


@dataclass(frozen=True)
class HackingSettings:
    """Every knob of the experiment; `smoke()` is a minutes-long run of every stage for tests."""

    generator: str | None = field(
        default=None, metadata={"help": "The base sketch generator's pipeline directory (default: the shipped one)."}
    )
    seeds: tuple[int, ...] = field(
        default=(0, 1, 2), metadata={"help": "An RL seed; repeat for several.", "flag": "--seed"}
    )
    steps: int = field(default=40, metadata={"help": "DiffusionNFT steps per arm and seed, when no --budget-minutes."})
    budget_minutes: float | None = field(
        default=None,
        metadata={
            "help": "RL time per arm and seed; a probe of the first run turns it into steps every run then takes."
        },
    )
    probe_steps: int = field(default=3, metadata={"help": "Steps of the probe run that times a step."})
    rl_prompts: int = field(default=64, metadata={"help": "Training prompts RL samples from."})
    eval_prompts: int = field(default=64, metadata={"help": "Held-out prompts."})
    eval_seeds: int = field(default=4, metadata={"help": "Images per held-out prompt."})
    group_size: int = field(default=8, metadata={"help": "Images per prompt in an RL step."})
    prompts_per_step: int = field(default=4, metadata={"help": "Prompt groups per RL step."})
    sample_steps: int = field(default=10, metadata={"help": "Sampler steps."})
    guidance_scale: float = field(default=3.0, metadata={"help": "Guidance scale while sampling."})
    learning_rate: float = field(default=3e-4, metadata={"help": "LoRA learning rate."})
    lora_rank: int = field(default=8, metadata={"help": "LoRA rank."})
    timestep_fraction: float = field(
        default=0.5,
        metadata={"help": "Share of the sampler's noise levels each sample is trained on (half: less CPU per step)."},
    )
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha."})
    eval_every: int | None = field(
        default=None,
        metadata={
            "help": "Steps between the RL trainer's evaluations (default: 5 per run, so the hacking alarm can fire)."
        },
    )
    gcr_prompts: int = field(default=32, metadata={"help": "Held-out prompts through GCR per preset."})
    gcr_presets: tuple[str, ...] = field(
        default=("paper", "deep"), metadata={"help": "GCR presets run beside RL; repeat for several."}
    )
    scalar: ScalarRewardSettings = field(default_factory=ScalarRewardSettings, metadata={"cli": False})
    threads: int = field(default=1, metadata={"help": "CPU threads per process (torch)."})

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ValueError("give at least one seed")
        if self.steps < 1 or self.rl_prompts < 1 or self.eval_prompts < 1 or self.eval_seeds < 1:
            raise ValueError("steps, rl_prompts, eval_prompts and eval_seeds must be at least 1")
        if self.budget_minutes is not None and self.budget_minutes <= 0:
            raise ValueError("--budget-minutes must be positive")
        if self.probe_steps < 1:
            raise ValueError("probe_steps must be at least 1")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must differ, got {list(self.seeds)}")

    @classmethod
    def smoke(cls, **overrides: Any) -> HackingSettings:
        small = cls(
            seeds=(0,),
            steps=2,
            rl_prompts=4,
            eval_prompts=4,
            eval_seeds=1,
            group_size=2,
            prompts_per_step=2,
            sample_steps=2,
            eval_every=1,
            gcr_prompts=2,
            gcr_presets=("paper",),
            scalar=ScalarRewardSettings(per_prompt=1, steps=5, batch_size=16),
        )
        return replace(small, **overrides)
