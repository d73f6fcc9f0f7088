"""DiffusionNFT (docs/method.md, "RL with the critique reward"; the release's Kontext trainer): sample with the old policy
on the ODE, then train on freshly noised x_t = (1 - t) x0 + t eps with the negative-aware loss

    w ||x0(v+) - x0||^2 + (1 - w) ||x0(v-) - x0||^2,  v+ = (1 - b) v_old + b v,  v- = (1 + b) v_old - b v,

where x0(v) = x_t - t v and w = clamp(adv / (2 clip) + 0.5, 0, 1); each error is divided by its sample's mean
absolute error (the release's adaptive weighting), the policy term is scaled by clip / b as the release scales it,
plus kl_beta ||v - v_ref||^2 to the reference (LoRA off). The old policy is a second LoRA adapter that follows the
trained one by a soft EMA after each step. The velocity trained is the conditional one (no classifier-free guidance
in the loss), so guidance only shapes what the old policy samples.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from rationalrewards.training._rl_advantages import StepAdvantages, nft_weights
from rationalrewards.training.flow_policy import Conditioning
from rationalrewards.training.nft_config import NFTConfig, old_policy_decay
from rationalrewards.training.rl_trainer import FlowRLTrainer, PromptItem, Rollout


class NFTTrainer(FlowRLTrainer):
    config_class: ClassVar[type[NFTConfig]] = NFTConfig
    keeps_old_policy: ClassVar[bool] = True
    config: NFTConfig

    def sample(
        self, items: list[PromptItem], cond: Conditioning, noise: torch.Tensor, generator: torch.Generator
    ) -> Rollout:
        return Rollout(items=items, cond=cond, x0=self.ode_sample(cond, noise, adapter="old"))

    def _velocities(
        self, xt: torch.Tensor, t: torch.Tensor, cond: Conditioning
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        policy = self.policy
        with torch.no_grad():
            self.transformer.set_adapter("old")
            v_old = policy.train_velocity(xt, t, cond)
            self.transformer.disable_adapters()
            v_ref = policy.train_velocity(xt, t, cond) if self.config.kl_beta > 0 else None
            self.transformer.enable_adapters()
        self.transformer.set_adapter("default")
        for parameter in self.trainable:
            parameter.requires_grad_(True)
        v = policy.train_velocity(xt, t, cond)
        return v, v_old, v_ref

    def loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        config = self.config
        x0, cond = batch["x0"], batch["cond"]
        n = x0.shape[0]
        sigmas = self.policy.sigmas(config.sample_steps)[:-1]  # the sampler's noise levels, 0 excluded
        chosen = torch.randperm(len(sigmas), generator=batch["generator"])[
            : max(1, round(len(sigmas) * config.timestep_fraction))
        ]
        w = torch.tensor(nft_weights(batch["advantages"].tolist(), config.adv_clip), device=x0.device)
        dims = tuple(range(1, x0.ndim))
        b = config.nft_beta
        total = torch.zeros((), device=x0.device)
        terms = {"policy_loss": 0.0, "kl": 0.0, "old_deviation": 0.0}
        for index in chosen.tolist():
            t = sigmas[index].to(x0.device).expand(n)
            t_ = t.view(-1, *([1] * (x0.ndim - 1)))
            noise = torch.randn(x0.shape, generator=batch["generator"]).to(x0.device, x0.dtype)
            xt = (1 - t_) * x0 + t_ * noise
            v, v_old, v_ref = self._velocities(xt, t, cond)
            x0_positive = xt - t_ * (b * v + (1 - b) * v_old)
            x0_negative = xt - t_ * ((1 + b) * v_old - b * v)
            positive = self._error(x0_positive, x0, dims)
            negative = self._error(x0_negative, x0, dims)
            policy_loss = ((w * positive + (1 - w) * negative) / b).mean() * config.adv_clip
            loss = policy_loss
            if v_ref is not None:
                kl = ((v - v_ref) ** 2).mean(dim=dims).mean()
                loss = loss + config.kl_beta * kl
                terms["kl"] += float(kl.detach()) / len(chosen)
            total = total + loss / len(chosen)
            terms["policy_loss"] += float(policy_loss.detach()) / len(chosen)
            terms["old_deviation"] += float(((v.detach() - v_old) ** 2).mean()) / len(chosen)
        terms["loss"] = float(total.detach())
        return total, terms

    def _error(self, prediction: torch.Tensor, x0: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
        squared = ((prediction - x0) ** 2).mean(dim=dims)
        if not self.config.adaptive_weighting:
            return squared
        with torch.no_grad():
            scale = (prediction - x0).abs().mean(dim=dims).clamp(min=1e-5)
        return squared / scale

    def loss_weights(self, advantages: StepAdvantages) -> list[float]:
        """w per sample (the positive branch's share); 0 where the sample is masked and never enters the loss."""
        weights = nft_weights(advantages.advantages, self.config.adv_clip)
        return [w if m else 0.0 for w, m in zip(weights, advantages.mask, strict=True)]

    def after_step(self) -> None:
        decay = old_policy_decay(self.updates, self.config.old_decay)
        with torch.no_grad():
            for old, new in zip(self.old, self.trainable, strict=True):
                old.data.mul_(decay).add_(new.data.to(old.dtype), alpha=1 - decay)
