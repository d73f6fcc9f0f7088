"""Integrating the flow-matching ODE from noise (sigma = 1) to data (sigma = 0): `euler`, or `dpm2`, the second-order
multistep DPM-Solver++ (2M) the release's RL recipe samples with.

The flow is the rectified one, x_sigma = (1 - sigma) x0 + sigma noise, and the policy gives its velocity v. DPM-Solver++
works on the data prediction x0 = x - sigma v and the half log-SNR lambda = log((1 - sigma) / sigma):

    x_next = (sigma_next / sigma) x - alpha_next (exp(-h) - 1) D,   h = lambda_next - lambda,   alpha = 1 - sigma

with D the current data prediction at the first step and the last (first order; the start sigma = 1 has lambda = -inf
and the end sigma = 0 has lambda = +inf), and D = (1 + 1/(2r)) x0_now - 1/(2r) x0_before, r = h_before / h, between:
the multistep's second order. Both solvers are exact on a flow whose data prediction is constant (a single data point:
straight paths); on a curved flow Euler's error falls with the step count, DPM-2M's with its square
(`tests/test_rl.py` checks both on a Gaussian flow whose solution is known in closed form).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch

Sampler = Literal["euler", "dpm2"]
SAMPLERS: tuple[Sampler, ...] = ("euler", "dpm2")
Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x, sigma per sample) -> v


def integrate(velocity: Velocity, x: torch.Tensor, sigmas: torch.Tensor, sampler: Sampler = "euler") -> torch.Tensor:
    """x at sigma = sigmas[-1] from x at sigmas[0], one velocity call per step."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    steps = len(sigmas) - 1
    previous: tuple[torch.Tensor, float] | None = None  # (data prediction, its step's h)
    for i in range(steps):
        sigma, following = float(sigmas[i]), float(sigmas[i + 1])
        v = velocity(x, sigmas[i].expand(x.shape[0]))
        if sampler == "euler":
            x = x + (following - sigma) * v
            continue
        data = x - sigma * v
        if following <= 0.0:  # the last step lands on the data prediction
            x = data
            continue
        h = _lam(following) - _lam(sigma)
        estimate = data
        if previous is not None and math.isfinite(previous[1]) and math.isfinite(h):
            r = previous[1] / h
            estimate = (1 + 1 / (2 * r)) * data - (1 / (2 * r)) * previous[0]
        alpha_next = 1.0 - following
        decay = 0.0 if not math.isfinite(h) else math.exp(-h)
        x = (following / sigma) * x - alpha_next * (decay - 1.0) * estimate
        previous = (data, h)
    return x


def _lam(sigma: float) -> float:
    if sigma >= 1.0:
        return -math.inf
    return math.log((1.0 - sigma) / sigma)


__all__ = ["SAMPLERS", "Sampler", "integrate"]
