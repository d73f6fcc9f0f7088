"""What the two diffusion-RL trainers share: the policy, sampling, rewards, grouping, LoRA, optimisation, monitors.

Every field is a CLI flag (`rationalrewards rl`) through `HfArgumentParser`, its help text in the metadata. Defaults
follow the method's released FLUX Kontext editing recipe (DiffusionNFT; TIGER-AI-Lab/RationalRewards
`diffusion_rl_training/config/flux_kontext_nft.py` and `train_flux_kontext_rationalrewards.py`): 15 sampling steps,
guidance 2.5, 8 images per prompt, lr 2e-4, LoRA rank 32 / alpha 64 on the attention projections, KL weight 1e-4,
advantages clipped at 5, prompts banned as solved when their group's std < 0.05 and mean > 0.9. Where the paper
differs (Appendix E: LoRA rank 32-64, 8-16 images per prompt), the help says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from rationalrewards.plumbing.choices import check_choices
from rationalrewards.rewardmodel.scoring import RewardPolicy
from rationalrewards.training.tiny_flow import TinyFamily

# The attention projections of SD3 and FLUX transformers (joint blocks add the text stream's `add_*` projections) and
# of UNets (`attn1` self-attention, `attn2` cross-attention to the text: the sketch flow pipeline). Present ones are used.
ATTENTION_PROJECTIONS = (
    "attn.to_q",
    "attn.to_k",
    "attn.to_v",
    "attn.to_out.0",
    "attn.add_q_proj",
    "attn.add_k_proj",
    "attn.add_v_proj",
    "attn.to_add_out",
    *(f"{block}.{name}" for block in ("attn1", "attn2") for name in ("to_q", "to_k", "to_v", "to_out.0")),
)


@dataclass
class RLConfig:
    ALGO: ClassVar[str] = ""

    # Policy
    pipeline: str | None = field(
        default=None, metadata={"help": "A local diffusers flow-matching pipeline directory (SD3 / FLUX / Kontext)."}
    )
    tiny: bool = field(default=False, metadata={"help": "Build a tiny random pipeline from config (CPU runs)."})
    tiny_family: TinyFamily = field(default="sd3", metadata={"help": "Family of the --tiny pipeline."})
    resolution: int | None = field(
        default=None, metadata={"help": "Image side in pixels (default: 512 as the release, 32 with --tiny)."}
    )
    max_sequence_length: int = field(default=128, metadata={"help": "Text tokens per prompt (the release: 128)."})
    # Sampling
    group_size: int = field(default=8, metadata={"help": "Images per prompt, K (the release: 8; the paper: 8-16)."})
    prompts_per_step: int = field(default=8, metadata={"help": "Prompt groups sampled per RL step."})
    sample_steps: int = field(default=15, metadata={"help": "Sampler steps (the release: 15)."})
    guidance_scale: float = field(default=2.5, metadata={"help": "Guidance scale while sampling (the release: 2.5)."})
    sample_chunk: int = field(
        default=1, metadata={"help": "Prompt groups sampled per forward batch; each chunk's rewards start at once."}
    )
    # Rewards
    reward_policy: RewardPolicy = field(
        default="paper", metadata={"help": "How aspect scores make one reward (rewardmodel/scoring.py)."}
    )
    per_aspect_advantages: bool = field(
        default=False,
        metadata={"help": "Normalise each aspect within its group and average the advantages (else the reward's)."},
    )
    std_mode: Literal["global", "group"] = field(
        default="global",
        metadata={"help": "Advantage scale: global (the paper: std over the step's samples) or group (per prompt)."},
    )
    adv_clip: float = field(default=5.0, metadata={"help": "Advantages clipped to +-this (the paper: 5)."})
    ban_solved: bool = field(
        default=True,
        metadata={"help": "Stop sampling prompts whose group is solved (std and mean thresholds; the release's rule)."},
    )
    ban_std: float = field(default=0.05, metadata={"help": "Solved: group reward std below this (the release: 0.05)."})
    ban_mean: float = field(default=0.9, metadata={"help": "Solved: group reward mean above this (the release: 0.9)."})
    max_abstention_share: float = field(
        default=0.5,
        metadata={"help": "Stop with an error when more than this share of a step's samples abstain (0-1)."},
    )
    reward_timeout: float = field(default=600.0, metadata={"help": "Seconds to wait for one chunk's rewards."})
    # LoRA and optimisation
    lora_rank: int = field(default=32, metadata={"help": "LoRA rank (the release: 32; the paper: 32-64)."})
    lora_alpha: int = field(default=64, metadata={"help": "LoRA alpha (the release: 64)."})
    lora_targets: str = field(
        default=",".join(ATTENTION_PROJECTIONS),
        metadata={"help": "Comma-separated module names LoRA adapts (present ones are used)."},
    )
    learning_rate: float = field(default=2e-4, metadata={"help": "AdamW learning rate (the release: 2e-4)."})
    weight_decay: float = field(default=1e-4, metadata={"help": "AdamW weight decay."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm."})
    train_batch_size: int = field(default=8, metadata={"help": "Samples per backward pass."})
    gradient_accumulation_steps: int = field(
        default=1, metadata={"help": "Backward passes (micro-batches) per optimizer update."}
    )
    timestep_fraction: float = field(
        default=1.0, metadata={"help": "Share of the sampler's noise levels trained on per sample."}
    )
    kl_beta: float = field(default=1e-4, metadata={"help": "Weight of the KL term to the reference (LoRA off)."})
    # Run
    max_steps: int = field(default=300, metadata={"help": "RL steps (sample, score, update)."})
    seed: int = field(default=0, metadata={"help": "Seed of prompt order, noise and LoRA initialisation."})
    save_every: int = field(default=20, metadata={"help": "Save the LoRA and the trainer state every N steps."})
    eval_every: int = field(
        default=10, metadata={"help": "Score the fixed evaluation prompts every N steps (0: never); grids as PNG."}
    )
    eval_prompts: int = field(default=8, metadata={"help": "Evaluation prompts (the first N of the prompt list)."})
    hacking_window: int = field(
        default=3,
        metadata={"help": "Evaluations compared by the hacking alarm (train reward up while eval reward falls)."},
    )
    device: str = field(default="auto", metadata={"help": "cuda, cpu or auto."})
    mixed_precision: Literal["auto", "bf16", "no"] = field(
        default="auto", metadata={"help": "auto: bf16 on CUDA, float32 on CPU."}
    )
    report_to: Literal["tensorboard", "trackio", "wandb", "none"] = field(
        default="tensorboard", metadata={"help": "Where training curves go besides history.jsonl."}
    )

    def __post_init__(self) -> None:
        if self.resolution is None:
            from rationalrewards.training.tiny_flow import TINY_RESOLUTION

            self.resolution = TINY_RESOLUTION if self.tiny else 512
        checks = {
            "group_size must be at least 2 (advantages compare samples of one prompt)": self.group_size >= 2,
            "prompts_per_step must be at least 1": self.prompts_per_step >= 1,
            "sample_steps must be at least 1": self.sample_steps >= 1,
            "sample_chunk must be at least 1": self.sample_chunk >= 1,
            "train_batch_size must be at least 1": self.train_batch_size >= 1,
            "gradient_accumulation_steps must be at least 1": self.gradient_accumulation_steps >= 1,
            "max_steps must be at least 1": self.max_steps >= 1,
            "save_every must be at least 1": self.save_every >= 1,
            "eval_every must be 0 or more": self.eval_every >= 0,
            "timestep_fraction must be in (0, 1]": 0 < self.timestep_fraction <= 1,
            "max_abstention_share must be in [0, 1]": 0 <= self.max_abstention_share <= 1,
            "adv_clip must be positive": self.adv_clip > 0,
            "resolution must be a positive multiple of 16": self.resolution > 0 and self.resolution % 16 == 0,
        }
        for message, ok in checks.items():
            if not ok:
                raise ValueError(message)
        check_choices(self)
        if self.pipeline is None and not self.tiny:
            raise ValueError("give a policy: --pipeline DIR (a diffusers pipeline) or --tiny")
