"""`FlowRLTrainer`: what DiffusionNFT and Flow-GRPO share, with the loss (and how sampling records a trajectory) left
to the subclasses.

One RL step: draw `prompts_per_step` prompt groups (solved prompts skipped), sample `group_size` images per group
with the old policy, chunk by chunk, handing each chunk's images to the reward model at once (a future on a
background event loop) while the next chunk samples; wait for the rewards; mask abstentions; group advantages
(prompt + source image); train the LoRA over the step's samples; log; evaluate and save on their schedules.

Every random draw of a step (prompt order, initial noise, training noise and timesteps) is seeded by (seed, step),
so a run killed after a checkpoint and resumed repeats exactly the steps an uninterrupted run would have taken.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import random
import shutil
import statistics
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import torch
from PIL import Image
from tqdm.auto import tqdm

from rationalrewards.plumbing.choices import choice
from rationalrewards.plumbing.telemetry import annotate, job_trace_id, span
from rationalrewards.rewardmodel.backends.base import RewardModel
from rationalrewards.rewardmodel.errors import RewardModelError
from rationalrewards.rewardmodel.images import as_image_ref
from rationalrewards.rewardmodel.reward_fn import CritiqueReward
from rationalrewards.rewardmodel.schemas import Abstention, Aspect, Critique, ImageRef
from rationalrewards.rewardmodel.scoring import RewardPolicy, reward_or_none
from rationalrewards.training._rl_advantages import GroupKey, StepAdvantages, group_key, step_advantages
from rationalrewards.training._rl_distributed import Ranks
from rationalrewards.training._rl_monitor import HackingAlarm, RunLogger, log, save_grid
from rationalrewards.training._rl_rewards import parse_reward_terms, weighted_mean
from rationalrewards.training.flow_policy import Conditioning, FlowPolicy, policy_for
from rationalrewards.training.flow_solvers import Sampler, integrate
from rationalrewards.training.rl_config import RLConfig

CHECKPOINTS, LORA_DIR, STATE_FILE = "checkpoints", "lora", "trainer_state.pt"
# Changing these on resume is safe (they do not change what a finished step computed).
_RESUMABLE = {"max_steps", "save_every", "eval_every", "report_to", "reward_timeout", "device"}


class AbstentionShareError(RewardModelError):
    """More of a step's samples abstained than the run allows: the reward is not measuring these images."""


@dataclass(frozen=True)
class PromptItem:
    """A prompt to train on; `source` for editing."""

    prompt: str
    source: ImageRef | None = None

    @property
    def key(self) -> GroupKey:
        return group_key(self.prompt, self.source.sha256 if self.source else None)


def prompt_items(prompts: Sequence[str | PromptItem | dict[str, Any]]) -> list[PromptItem]:
    """Strings, PromptItems, or suite rows (`prompt` and an optional `source_image`)."""
    items: list[PromptItem] = []
    for entry in prompts:
        if isinstance(entry, PromptItem):
            items.append(entry)
        elif isinstance(entry, str):
            items.append(PromptItem(entry))
        elif isinstance(entry, dict) and isinstance(entry.get("prompt"), str):
            source = entry.get("source_image")
            items.append(PromptItem(entry["prompt"], as_image_ref(source) if source else None))
        else:
            raise ValueError(f"a prompt is a string or a row with a 'prompt' field, got {entry!r}")
    if not items:
        raise ValueError("no prompts to train on")
    if any(not item.prompt.strip() for item in items):
        raise ValueError("a prompt is blank")
    return items


@dataclass
class Rollout:
    """One chunk of sampling: the samples' groups, conditioning, clean latents (and, for GRPO, the trajectory with
    its per-step log-probabilities), the decoded images, and the future of their critiques."""

    items: list[PromptItem]
    cond: Conditioning
    x0: torch.Tensor
    trajectory: torch.Tensor | None = None
    log_probs: torch.Tensor | None = None
    images: list[Image.Image] = field(default_factory=list)
    future: concurrent.futures.Future[list[Critique | Abstention]] | None = None
    extra_futures: dict[str, concurrent.futures.Future[list[Critique | Abstention]]] = field(default_factory=dict)


@dataclass
class Scored:
    reward: float | None  # the critic's reward, or with several rewards their weighted mean
    aspects: dict[str, float | None]
    abstention: str | None
    terms: dict[str, float | None] = field(default_factory=dict)  # each reward term's value (several rewards)


def score(result: Critique | Abstention, policy: str) -> Scored:
    """A critique as the trainer reads it: the policy's reward and each aspect on [0, 1], None where not scored."""
    if isinstance(result, Abstention):
        return Scored(None, {}, result.reason)
    aspects = {name: None if value is None else (value - 1.0) / 3.0 for name, value in result.scores.items()}
    return Scored(reward_or_none(result, choice(policy, RewardPolicy, "reward policy")), aspects, None)


class FlowRLTrainer:
    config_class: ClassVar[type[RLConfig]] = RLConfig

    def __init__(
        self,
        config: RLConfig,
        reward_model: RewardModel,
        prompts: Sequence[str | PromptItem | dict[str, Any]],
        *,
        pipeline: Any = None,
        eval_reward_model: RewardModel | None = None,
        extra_rewards: Mapping[str, RewardModel] | None = None,
        out: str | Path = "rl_out",
    ) -> None:
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} takes a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config
        self.items = prompt_items(prompts)
        self.out = Path(out)
        self.ranks = Ranks()
        if config.prompts_per_step < self.ranks.world:
            raise ValueError(
                f"prompts_per_step ({config.prompts_per_step}) must be at least the number of processes "
                f"({self.ranks.world}): each process samples whole prompt groups"
            )
        self.device = self.ranks.device(config.device)
        bf16 = config.mixed_precision == "bf16" or (config.mixed_precision == "auto" and self.device.type == "cuda")
        self.weight_dtype = torch.bfloat16 if bf16 else torch.float32
        if pipeline is None:
            pipeline = self._load_pipeline()
        self.pipe = pipeline
        self.policy: FlowPolicy = policy_for(
            pipeline,
            resolution=config.resolution or 512,
            guidance_scale=config.guidance_scale,
            max_sequence_length=config.max_sequence_length,
        )
        if any(item.source is not None for item in self.items) and not self.policy.edits:
            raise ValueError(f"the prompts have source images but {type(pipeline).__name__} does not edit")
        self.transformer: Any = self.policy.transformer
        # The release's recipe samples FLUX Kontext with DPM-Solver++ (2M); it has no recipe for the other families.
        self.sampler: Sampler = (
            ("dpm2" if type(pipeline).__name__.startswith("FluxKontext") else "euler")
            if config.sampler == "auto"
            else config.sampler
        )
        self._add_lora()
        self.optimizer = torch.optim.AdamW(self.trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
        self.reward = CritiqueReward(reward_model, choice(config.reward_policy, RewardPolicy, "reward policy"))
        self.terms = parse_reward_terms(config.reward, [a.value for a in Aspect])
        if len(self.terms) > 1 and config.per_aspect_advantages:
            raise ValueError("--per-aspect-advantages normalises one critique's aspects; with several --reward terms "
                             "use --reward-mix normalised (and critique.<aspect> terms)")  # fmt: skip
        missing = sorted(t.spec for t in self.terms if t.kind == "model" and t.spec not in (extra_rewards or {}))
        if missing:
            raise ValueError(f"no reward model given for --reward {', '.join(missing)}")
        self.extra = {
            t.spec: CritiqueReward((extra_rewards or {})[t.spec], self.reward.policy)
            for t in self.terms
            if t.kind == "model"
        }
        self.eval_reward = (
            CritiqueReward(eval_reward_model, choice(config.reward_policy, RewardPolicy, "reward policy"))
            if eval_reward_model
            else None
        )
        self.step = 0
        self.updates = 0
        self.banned: set[GroupKey] = set()
        self.alarm = HackingAlarm(config.hacking_window)
        self.last_step: dict[str, object] = {}  # the last step's advantages, mask and loss weights (for inspection)

    # --- set-up ---------------------------------------------------------------------------------------------------

    def _load_pipeline(self) -> object:
        if self.config.tiny:
            from rationalrewards.training.tiny_flow import build_tiny_flow_pipeline

            pipe = build_tiny_flow_pipeline(self.config.tiny_family, seed=self.config.seed)
            pipe.set_progress_bar_config(disable=True)
            return (
                pipe.to(self.device) if self.weight_dtype == torch.float32 else pipe.to(self.device, self.weight_dtype)
            )
        from rationalrewards.agents.diffusers_generator import load_pipeline

        assert self.config.pipeline is not None
        return load_pipeline(self.config.pipeline, device=str(self.device), dtype=self.weight_dtype)

    def _add_lora(self) -> None:
        from peft import LoraConfig

        names = {name for name, _ in self.transformer.named_modules()}
        wanted = [t.strip() for t in self.config.lora_targets.split(",") if t.strip()]
        present = [t for t in wanted if any(name == t or name.endswith("." + t) for name in names)]
        if not present:
            raise ValueError(f"none of the LoRA targets {wanted} is a module of {type(self.transformer).__name__}")
        for component in ("transformer", "unet", "vae", "text_encoder", "text_encoder_2", "text_encoder_3"):
            module = getattr(self.pipe, component, None)
            if isinstance(module, torch.nn.Module):
                module.requires_grad_(False)
        torch.manual_seed(self.config.seed)
        lora = LoraConfig(
            r=self.config.lora_rank,
            lora_alpha=self.config.lora_alpha,
            init_lora_weights="gaussian",
            target_modules=present,
        )
        self.transformer.add_adapter(lora, adapter_name="default")
        if self.keeps_old_policy:
            with warnings.catch_warnings():  # peft warns that a second adapter is being added: that is the point
                warnings.filterwarnings("ignore", message="Already found a `peft_config`")
                self.transformer.add_adapter(lora, adapter_name="old")
        self.transformer.set_adapter("default")
        self.trainable = [p for n, p in self.transformer.named_parameters() if "lora_" in n and ".default." in n]
        for parameter in self.trainable:
            parameter.data = parameter.data.float()  # LoRA weights train in float32 under bf16 autocast
            parameter.requires_grad_(True)
        if self.keeps_old_policy:
            self.old = [p for n, p in self.transformer.named_parameters() if "lora_" in n and ".old." in n]
            with torch.no_grad():
                for old, new in zip(self.old, self.trainable, strict=True):
                    old.data = new.data.clone()
                    old.requires_grad_(False)

    keeps_old_policy: ClassVar[bool] = False

    # --- the loop -------------------------------------------------------------------------------------------------

    def train(self, *, force_new: bool = False) -> list[dict[str, object]]:
        """Run until `max_steps`, resuming from the last checkpoint in `out` (`force_new`: archive a run there made
        with other settings and start afresh); returns the whole history."""
        from rationalrewards.plumbing.logs import configure_logging
        from rationalrewards.runtime.rundir import RunDirectory

        configure_logging(level="WARNING")  # no-op when the CLI (or the user) configured it already
        main = self.ranks.main
        self.out.mkdir(parents=True, exist_ok=True)
        # Only the main process holds the run directory, logs and saves; the others train their replica beside it.
        run_dir = (
            RunDirectory(self.out).open(f"rl-{self.config.ALGO}", self._settings(), force_new=force_new)
            if main
            else None
        )
        self.ranks.barrier()  # a --force-new archive is done before anyone reads a checkpoint
        rows: list[dict[str, object]] = []
        logger = None
        try:
            self._resume()
            if main:
                logger = RunLogger(
                    self.out, self.config.report_to, f"{self.config.ALGO}-{self.out.name}", resume_at_step=self.step
                )
            settings = self._settings()
            with (
                self._run_span(settings),
                tqdm(
                    total=self.config.max_steps,
                    initial=self.step,
                    desc=f"RL ({self.config.ALGO})",
                    unit="step",
                    disable=not main,
                ) as bar,
            ):
                while self.step < self.config.max_steps:
                    with span("rl.step", step=self.step, algo=self.config.ALGO):
                        row = self.train_step()
                        annotate(**{k: v for k, v in row.items() if isinstance(v, (int, float, str))})
                    rows.append(row)
                    if logger is not None:
                        logger.record(row)
                    bar.update(1)
                    bar.set_postfix(reward=f"{row['reward_mean']:.3f}" if row["reward_mean"] is not None else "-")
                    if main and (self.step % self.config.save_every == 0 or self.step == self.config.max_steps):
                        self.save()
            self._check_replicas()
            return logger.read() if logger is not None else rows
        finally:
            if logger is not None:
                logger.close()
            if run_dir is not None:
                run_dir.close()
            self.reward.close()
            if self.eval_reward is not None:
                self.eval_reward.close()

    def _run_span(self, settings: dict[str, object]) -> Any:
        """The run's OpenTelemetry span (its steps are children; one trace per run across data-parallel ranks)."""
        job = f"rl-{self.config.ALGO}"
        trace_id = job_trace_id(job, settings, str(settings["prompts_sha256"]))
        return span("rl.run", parent_trace_id=trace_id, job=job, out=str(self.out), rank=self.ranks.rank)

    def _check_replicas(self) -> None:
        """Data-parallel replicas must end with the same LoRA; a difference means the processes drifted apart."""
        checksum = float(sum(float(p.detach().double().sum()) for p in self.trainable))
        sums = [value for share in self.ranks.gather([checksum]) for value in share]
        if max(sums) - min(sums) > 1e-6 * max(1.0, abs(sums[0])):
            raise RuntimeError(f"the data-parallel replicas diverged (LoRA checksums {sums})")

    def _settings(self) -> dict[str, object]:
        settings = {f.name: getattr(self.config, f.name) for f in fields(self.config) if f.name not in _RESUMABLE}
        digest = hashlib.sha256(json.dumps([(i.prompt, i.key[1]) for i in self.items]).encode()).hexdigest()
        return settings | {
            "algo": self.config.ALGO,
            "prompts_sha256": digest,
            "sampler_used": self.sampler,
            "critic": getattr(self.reward.reward_model, "name", type(self.reward.reward_model).__name__),
        }

    def _draw(self) -> list[PromptItem]:
        """This step's prompt groups: a seeded shuffle of the prompts not banned as solved."""
        open_items = [item for item in self.items if item.key not in self.banned] or self.items
        rng = random.Random(f"{self.config.seed}:{self.step}")
        order = rng.sample(open_items, len(open_items))
        return [order[i % len(order)] for i in range(self.config.prompts_per_step)]

    def _autocast(self) -> Any:
        if self.weight_dtype == torch.bfloat16 and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast(self.device.type, enabled=False)

    def train_step(self) -> dict[str, object]:
        """One RL step (sample, score, update; evaluation on its schedule); returns its history row."""
        config = self.config
        started = time.perf_counter()
        world, rank = self.ranks.world, self.ranks.rank
        generator = torch.Generator().manual_seed((config.seed * 1_000_003 + self.step) * world + rank)
        groups = self.ranks.shard(self._draw())
        rollouts: list[Rollout] = []
        self.transformer.eval()
        for start in range(0, len(groups), config.sample_chunk):
            rollouts.append(self._rollout(groups[start : start + config.sample_chunk], generator))
        sampled = time.perf_counter()
        results: list[Critique | Abstention] = []
        extra: dict[str, list[Critique | Abstention]] = {name: [] for name in self.extra}
        for rollout in rollouts:
            assert rollout.future is not None
            try:
                results.extend(rollout.future.result(timeout=config.reward_timeout))
                for name, future in rollout.extra_futures.items():
                    extra[name].extend(future.result(timeout=config.reward_timeout))
            except concurrent.futures.TimeoutError as e:
                raise RewardModelError(
                    f"the reward model gave no answer within {config.reward_timeout:.0f} s (--reward-timeout)"
                ) from e
        scored_at = time.perf_counter()
        # Every process reads the whole step: the global std, solved prompts and the history need all samples.
        local = [
            self._mixed(score(result, config.reward_policy), {name: extra[name][i] for name in extra})
            for i, result in enumerate(results)
        ]
        shares = self.ranks.gather(local)
        key_shares = self.ranks.gather([item.key for rollout in rollouts for item in rollout.items])
        offset = sum(len(share) for share in shares[:rank])
        scored = [s for share in shares for s in share]
        keys = [key for share in key_shares for key in share]
        abstained = sum(s.reward is None for s in scored)
        if abstained > config.max_abstention_share * len(scored):
            reasons = sorted({s.abstention or "" for s in scored if s.abstention})
            raise AbstentionShareError(
                f"{abstained} of {len(scored)} samples abstained at step {self.step + 1} (reasons: "
                f"{', '.join(reasons)}); more than --max-abstention-share {config.max_abstention_share}. "
                "The last checkpoint is kept; check the critic (its log, max tokens, prompt profile)."
            )
        aspect_names = sorted({name for s in scored for name in s.aspects})
        aspects = {name: [s.aspects.get(name) for s in scored] for name in aspect_names}
        several = len(self.terms) > 1 and config.reward_mix == "normalised"
        advantages = step_advantages(
            [s.reward for s in scored],
            keys,
            aspects=aspects if config.per_aspect_advantages else None,
            terms={t.spec: (t.weight, [s.terms.get(t.spec) for s in scored]) for t in self.terms} if several else None,
            std_mode=config.std_mode,
            clip=config.adv_clip,
            ban_std=config.ban_std,
            ban_mean=config.ban_mean,
            ban_solved=config.ban_solved,
        )
        if config.ban_solved:
            self.banned.update(advantages.solved)
        self.transformer.train()
        mine = slice(offset, offset + len(local))
        losses = self._train_on(
            rollouts, replace(advantages, advantages=advantages.advantages[mine], mask=advantages.mask[mine])
        )
        self.step += 1
        self.after_step()
        trained = time.perf_counter()
        rewards = [s.reward for s in scored if s.reward is not None]
        row: dict[str, object] = {
            "step": self.step,
            "reward_mean": statistics.fmean(rewards) if rewards else None,
            "reward_std": statistics.pstdev(rewards) if len(rewards) > 1 else 0.0,
            "abstained": abstained,
            "abstention_rate": abstained / len(scored),
            "samples": len(scored),
            "trained_samples": sum(advantages.mask),
            "solved_groups": len(advantages.solved),
            "banned_prompts": len(self.banned),
            "groups_without_baseline": advantages.groups_without_baseline,
            "mean_group_std": advantages.mean_group_std,
            "images_per_second": len(scored) / max(trained - started, 1e-9),
            "sample_seconds": sampled - started,
            "reward_wait_seconds": scored_at - sampled,
            "train_seconds": trained - scored_at,
            "seconds": trained - started,
            "updates": self.updates,
        }
        for name, series in aspects.items():
            values = [v for v in series if v is not None]
            row[f"reward_{name}"] = statistics.fmean(values) if values else None
        if len(self.terms) > 1:  # every reward's curve, and how often each abstained
            for term in self.terms:
                values = [v for s in scored if (v := s.terms.get(term.spec)) is not None]
                row[f"reward_term_{term.spec}"] = statistics.fmean(values) if values else None
                row[f"abstained_term_{term.spec}"] = len(scored) - len(values)
        row |= losses
        self.last_step = {
            "advantages": advantages.advantages,
            "mask": advantages.mask,
            "rewards": [s.reward for s in scored],
            "keys": keys,
            "loss_weights": self.loss_weights(advantages),
        }
        row["world_size"] = world
        if config.eval_every and self.step % config.eval_every == 0 and self.ranks.main:
            row |= self.evaluate()
        return row

    def _mixed(self, critic: Scored, extra: Mapping[str, Critique | Abstention]) -> Scored:
        """A sample's score with every reward term (`_rl_rewards.py`); one term (the critic's reward) leaves it be."""
        if len(self.terms) == 1 and self.terms[0].kind == "critique":
            return critic
        values: dict[str, float | None] = {}
        for term in self.terms:
            if term.kind == "critique":
                values[term.spec] = critic.reward
            elif term.kind == "aspect":
                values[term.spec] = critic.aspects.get(term.aspect or "")
            else:
                values[term.spec] = reward_or_none(extra[term.spec], self.reward.policy)
        mixed = weighted_mean(values, {t.spec: t.weight for t in self.terms})
        abstention = None if mixed is not None else (critic.abstention or "every reward abstained")
        return replace(critic, reward=mixed, terms=values, abstention=abstention)

    def _rollout(self, groups: list[PromptItem], generator: torch.Generator) -> Rollout:
        """`group_size` samples of each group: its prompt (and source image) encoded once, the conditioning
        repeated for the group's samples."""
        size = self.config.group_size
        items = [item for item in groups for _ in range(size)]
        cond = self.policy.encode([g.prompt for g in groups], [g.source for g in groups]).repeat(size)
        noise = self.policy.initial_noise(len(items), generator)
        with torch.no_grad(), self._autocast():
            rollout = self.sample(items, cond, noise, generator)
        rollout.images = self.policy.decode(rollout.x0)
        asked = {
            "images": rollout.images,
            "source_images": [i.source for i in items] if any(i.source for i in items) else None,
        }
        rollout.future = self.reward.submit([i.prompt for i in items], **asked)
        for name, reward in self.extra.items():  # the other rewards, scored beside the critic
            rollout.extra_futures[name] = reward.submit([i.prompt for i in items], **asked)
        return rollout

    def _train_on(self, rollouts: list[Rollout], advantages: StepAdvantages) -> dict[str, float]:
        """Gradient updates over the step's unmasked samples, in micro-batches of `train_batch_size`, one optimizer
        update per `gradient_accumulation_steps` micro-batches."""
        config = self.config
        x0 = torch.cat([r.x0 for r in rollouts])
        cond = Conditioning.cat([r.cond for r in rollouts])
        trajectory = _cat_optional([r.trajectory for r in rollouts])
        log_probs = _cat_optional([r.log_probs for r in rollouts])
        keep = [i for i, m in enumerate(advantages.mask) if m]
        rng = torch.Generator().manual_seed((config.seed * 7_000_003 + self.step) * self.ranks.world + self.ranks.rank)
        order = torch.tensor(keep, dtype=torch.long)[torch.randperm(len(keep), generator=rng)]
        adv = torch.tensor(advantages.advantages, dtype=torch.float32)
        batches = [order[i : i + config.train_batch_size] for i in range(0, len(order), config.train_batch_size)]
        # Processes with fewer micro-batches still join every gradient average (with zero gradients), so the
        # collectives line up and the replicas take the same updates.
        rounds = self.ranks.max(len(batches))
        if rounds == 0:
            return {"loss": 0.0}
        totals: dict[str, list[float]] = {}
        self.optimizer.zero_grad(set_to_none=True)
        for number in range(1, rounds + 1):
            if number <= len(batches):
                index = batches[number - 1]
                batch = {
                    "x0": x0[index],
                    "cond": cond.select(index),
                    "advantages": adv[index].to(self.device),
                    "trajectory": trajectory[index] if trajectory is not None else None,
                    "log_probs": log_probs[index] if log_probs is not None else None,
                    "generator": rng,
                }
                with self._autocast():
                    loss, terms = self.loss(batch)
                (loss / config.gradient_accumulation_steps).backward()
                for key, value in terms.items():
                    totals.setdefault(key, []).append(value)
            if number % config.gradient_accumulation_steps == 0 or number == rounds:
                self.ranks.average_gradients(self.trainable)
                norm = torch.nn.utils.clip_grad_norm_(self.trainable, config.max_grad_norm)
                totals.setdefault("grad_norm", []).append(float(norm))
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.updates += 1
        return {key: statistics.fmean(values) for key, values in totals.items()}

    # --- what the algorithms fill in -----------------------------------------------------------------------------

    def sample(
        self, items: list[PromptItem], cond: Conditioning, noise: torch.Tensor, generator: torch.Generator
    ) -> Rollout:
        raise NotImplementedError

    def loss(self, batch: dict[str, object]) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def loss_weights(self, advantages: StepAdvantages) -> list[float]:
        """Each sample's weight in the loss (0 for a masked one)."""
        raise NotImplementedError

    def after_step(self) -> None:
        """Called after each step's updates (NFT moves its old policy here)."""

    # --- evaluation, checkpoints ---------------------------------------------------------------------------------

    def evaluate(self) -> dict[str, object]:
        """The first `eval_prompts` prompts, one image each from fixed noise with the current policy, scored by the
        training reward and (if given) the eval-only reward model; a PNG grid; the hacking alarm."""
        items = self.items[: self.config.eval_prompts]
        generator = torch.Generator().manual_seed(self.config.seed + 99_991)
        cond = self.policy.encode([i.prompt for i in items], [i.source for i in items])
        noise = self.policy.initial_noise(len(items), generator)
        self.transformer.eval()
        with torch.no_grad(), self._autocast():
            x0 = self.ode_sample(cond, noise, adapter="default")
        images = self.policy.decode(x0)
        sources = [i.source for i in items] if any(i.source for i in items) else None
        prompts = [i.prompt for i in items]
        train_scores = [
            score(r, self.config.reward_policy)
            for r in self.reward.submit(prompts, images=images, source_images=sources).result()
        ]
        row: dict[str, Any] = {"eval_train_reward": _mean([s.reward for s in train_scores])}
        judge = self.eval_reward or self.reward
        eval_scores = (
            train_scores
            if judge is self.reward
            else [
                score(r, self.config.reward_policy)
                for r in judge.submit(prompts, images=images, source_images=sources).result()
            ]
        )
        row["eval_reward"] = _mean([s.reward for s in eval_scores])
        aspects: dict[str, float] = {}
        for name in sorted({n for s in eval_scores for n in s.aspects}):
            value = _mean([s.aspects.get(name) for s in eval_scores])
            if value is not None:
                aspects[name] = row[f"eval_{name}"] = value
        grid = self.out / "samples" / f"step-{self.step:06d}.png"
        captions = [
            f"{p} | {s.reward:.2f}" if s.reward is not None else f"{p} | abstained"
            for p, s in zip(prompts, eval_scores, strict=True)
        ]
        save_grid(images, captions, grid)
        row["eval_grid"] = str(grid)
        if row["eval_train_reward"] is not None:
            alarm = self.alarm.update(
                row["eval_train_reward"], row["eval_reward"] if self.eval_reward else None, aspects
            )
            if alarm:
                row["hacking_alarm"] = alarm
                log.warning("hacking_alarm", message=alarm, step=self.step)
        return row

    def ode_sample(self, cond: Conditioning, noise: torch.Tensor, *, adapter: str) -> torch.Tensor:
        """Deterministic integration of the ODE from noise to a clean latent with one adapter active (`--sampler`)."""
        self.transformer.set_adapter(adapter)
        try:
            sigmas = self.policy.sigmas(self.config.sample_steps).to(self.device)
            return integrate(lambda x, sigma: self.policy.velocity(x, sigma, cond), noise, sigmas, self.sampler)
        finally:
            self.transformer.set_adapter("default")
            for parameter in self.trainable:
                parameter.requires_grad_(True)  # peft's set_adapter re-marks which adapter trains

    def lora_state(self, adapter: str = "default") -> dict[str, torch.Tensor]:
        from peft.utils import get_peft_model_state_dict

        return get_peft_model_state_dict(self.transformer, adapter_name=adapter)

    def save(self) -> Path:
        """`checkpoints/step-N/` (LoRA in diffusers' format + the trainer state), written beside and renamed into
        place, then copied to `lora/` (the latest LoRA); two checkpoints kept."""
        root = self.out / CHECKPOINTS
        final = root / f"step-{self.step:06d}"
        staging = root / f".step-{self.step:06d}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        lora = self.transformer.peft_config["default"]
        type(self.pipe).save_lora_weights(
            staging,
            transformer_lora_layers=self.lora_state("default"),
            # rank, alpha and targets travel with the weights: a loader that guessed alpha = rank would halve the
            # release's update (alpha 64, rank 32)
            transformer_lora_adapter_metadata={
                "r": lora.r,
                "lora_alpha": lora.lora_alpha,
                "target_modules": sorted(lora.target_modules),
            },
            safe_serialization=True,
        )
        state = {
            "step": self.step,
            "updates": self.updates,
            "optimizer": self.optimizer.state_dict(),
            "default": self.lora_state("default"),
            "old": self.lora_state("old") if self.keeps_old_policy else None,
            "banned": [list(key) for key in sorted(self.banned, key=str)],
            "alarm": self.alarm.points,
            "config": asdict(self.config),
        }
        torch.save(state, staging / STATE_FILE)
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
        # `lora/` is replaced by renames, never deleted first: a reader (or a crash) sees the old LoRA or the new one.
        latest, fresh = self.out / LORA_DIR, self.out / f".{LORA_DIR}.new"
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.copytree(final, fresh, ignore=shutil.ignore_patterns(STATE_FILE))
        replaced = self.out / f".{LORA_DIR}.old"
        shutil.rmtree(replaced, ignore_errors=True)
        if latest.exists():
            latest.rename(replaced)
        fresh.rename(latest)
        shutil.rmtree(replaced, ignore_errors=True)
        for old in sorted(root.glob("step-*"))[:-2]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def _resume(self) -> None:
        from peft.utils import set_peft_model_state_dict

        checkpoints = sorted((self.out / CHECKPOINTS).glob("step-*"))
        if not checkpoints:
            return
        state = torch.load(checkpoints[-1] / STATE_FILE, map_location=self.device, weights_only=True)
        set_peft_model_state_dict(self.transformer, state["default"], adapter_name="default")
        if self.keeps_old_policy and state["old"] is not None:
            set_peft_model_state_dict(self.transformer, state["old"], adapter_name="old")
        self.transformer.set_adapter("default")
        for parameter in self.trainable:
            parameter.requires_grad_(True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.updates = int(state["step"]), int(state["updates"])
        self.banned = {(k[0], k[1]) for k in state["banned"]}
        self.alarm.points = list(state["alarm"])


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def _cat_optional(tensors: list[torch.Tensor | None]) -> torch.Tensor | None:
    """The rollouts' tensors joined, or None when the algorithm records none (NFT keeps no trajectory)."""
    present = [t for t in tensors if t is not None]
    if not present:
        return None
    if len(present) != len(tensors):
        raise ValueError("some rollouts recorded a trajectory and some did not")
    return torch.cat(present)
