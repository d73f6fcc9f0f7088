"""Flow-GRPO: sample on an SDE that has the flow ODE's marginals, recording each step's Gaussian log-probability;
then, for the recorded transitions x_j -> x_{j+1}, recompute the log-probability under the trained policy and apply
PPO's clipped ratio objective with the group advantages, plus a KL term to the reference (LoRA off) on the step means.

The SDE step from sigma to sigma' (dt = sigma' - sigma < 0), with s = a sqrt(sigma / (1 - sigma)):
    mean = x (1 + s^2 dt / (2 sigma)) + v (1 + s^2 (1 - sigma) / (2 sigma)) dt,   std = s sqrt(-dt)
(sigma = 1 is read as the next level down, where the formula is finite). Sampling and training use the same velocity
(classifier-free guidance included), so the ratio compares like with like.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch

from rationalrewards.training._rl_advantages import StepAdvantages
from rationalrewards.training.flow_policy import Conditioning
from rationalrewards.training.grpo_config import GRPOConfig
from rationalrewards.training.rl_trainer import FlowRLTrainer, PromptItem, Rollout


def sde_step(
    x: torch.Tensor,
    v: torch.Tensor,
    sigma: torch.Tensor,
    sigma_next: torch.Tensor,
    noise_level: float,
    sigma_cap: float,
    *,
    target: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(next latent, its log-probability per sample, the step mean, the step std). With `target` the next latent is
    given (training) instead of drawn."""
    s_sigma = torch.clamp(sigma, max=sigma_cap)
    view = (-1, *([1] * (x.ndim - 1)))
    s_sigma, dt = s_sigma.view(view), (sigma_next - sigma).view(view)
    std_t = noise_level * torch.sqrt(s_sigma / (1 - s_sigma))
    mean = x * (1 + std_t**2 / (2 * s_sigma) * dt) + v * (1 + std_t**2 * (1 - s_sigma) / (2 * s_sigma)) * dt
    std = std_t * torch.sqrt(-dt)
    if target is None:
        target = mean + std * torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
    dims = tuple(range(1, x.ndim))
    log_prob = -((target.detach() - mean) ** 2) / (2 * std**2) - torch.log(std) - math.log(math.sqrt(2 * math.pi))
    return target, log_prob.mean(dim=dims), mean, std


class GRPOTrainer(FlowRLTrainer):
    config_class: ClassVar[type[GRPOConfig]] = GRPOConfig
    config: GRPOConfig

    def _step_velocity(self, x: torch.Tensor, sigma: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        return self.policy.velocity(x, sigma.expand(x.shape[0]), cond)

    def sample(
        self, items: list[PromptItem], cond: Conditioning, noise: torch.Tensor, generator: torch.Generator
    ) -> Rollout:
        sigmas = self.policy.sigmas(self.config.sample_steps).to(self.device)
        x, trajectory, log_probs = noise, [noise], []
        for i in range(self.config.sample_steps):
            v = self._step_velocity(x, sigmas[i], cond)
            x, log_prob, _, _ = sde_step(
                x,
                v,
                sigmas[i].expand(x.shape[0]),
                sigmas[i + 1].expand(x.shape[0]),
                self.config.noise_level,
                float(sigmas[1]),
                generator=generator,
            )
            trajectory.append(x)
            log_probs.append(log_prob)
        return Rollout(
            items=items, cond=cond, x0=x, trajectory=torch.stack(trajectory, dim=1), log_probs=torch.stack(log_probs, 1)
        )

    def loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        config = self.config
        cond, trajectory, old_log_probs = batch["cond"], batch["trajectory"], batch["log_probs"]
        advantages = batch["advantages"]
        sigmas = self.policy.sigmas(config.sample_steps).to(self.device)
        steps = config.sample_steps
        chosen = torch.randperm(steps, generator=batch["generator"])[: max(1, round(steps * config.timestep_fraction))]
        total = torch.zeros((), device=self.device)
        terms = {"policy_loss": 0.0, "kl": 0.0, "clip_fraction": 0.0, "ratio": 0.0}
        n = trajectory.shape[0]
        for j in chosen.tolist():
            x, target = trajectory[:, j], trajectory[:, j + 1]
            sigma, sigma_next = sigmas[j].expand(n), sigmas[j + 1].expand(n)
            v = self._step_velocity(x, sigmas[j], cond)
            _, log_prob, mean, std = sde_step(
                x, v, sigma, sigma_next, config.noise_level, float(sigmas[1]), target=target
            )
            ratio = torch.exp(log_prob - old_log_probs[:, j])
            clipped = torch.clamp(ratio, 1 - config.clip_range, 1 + config.clip_range)
            policy_loss = torch.maximum(-advantages * ratio, -advantages * clipped).mean()
            loss = policy_loss
            if config.kl_beta > 0:
                with torch.no_grad():
                    self.transformer.disable_adapters()
                    v_ref = self._step_velocity(x, sigmas[j], cond)
                    self.transformer.enable_adapters()
                    self.transformer.set_adapter("default")
                    for parameter in self.trainable:
                        parameter.requires_grad_(True)
                    _, _, mean_ref, _ = sde_step(
                        x, v_ref, sigma, sigma_next, config.noise_level, float(sigmas[1]), target=target
                    )
                dims = tuple(range(1, x.ndim))
                kl = (((mean - mean_ref) ** 2).mean(dim=dims) / (2 * std.view(n) ** 2)).mean()
                loss = loss + config.kl_beta * kl
                terms["kl"] += float(kl.detach()) / len(chosen)
            total = total + loss / len(chosen)
            terms["policy_loss"] += float(policy_loss.detach()) / len(chosen)
            terms["clip_fraction"] += float(((ratio.detach() - 1).abs() > config.clip_range).float().mean()) / len(
                chosen
            )
            terms["ratio"] += float(ratio.detach().mean()) / len(chosen)
        terms["loss"] = float(total.detach())
        return total, terms

    def loss_weights(self, advantages: StepAdvantages) -> list[float]:
        """The advantage multiplying each sample's ratio; 0 where masked (the sample is not in the loss)."""
        return [a if m else 0.0 for a, m in zip(advantages.advantages, advantages.mask, strict=True)]
