"""Synchronous one-call functions behind the CLI's `critique` and `compare`, returning JSON-ready dicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rationalrewards.agents.critic_tool import critique_json, judgement_json
from rationalrewards.agents.factory import reward_model_from_spec
from rationalrewards.agents.specs import BackendSpec, HttpBackend, parse_spec
from rationalrewards.plumbing.aio import run_sync
from rationalrewards.rewardmodel.backends.base import aclose_backends, prompt_profile_of
from rationalrewards.rewardmodel.images import image_ref_from_path
from rationalrewards.rewardmodel.schemas import CompareRequest, CritiqueRequest, Task
from rationalrewards.rewardmodel.scoring import RewardPolicy


async def _once(backend: object, method: str, request: object) -> list[Any]:
    try:
        results: list[object] = await getattr(backend, method)([request])
        return results
    finally:
        await aclose_backends(backend)


def _http_options(critic: BackendSpec, timeout: float | None) -> dict[str, object]:
    """For an HTTP critic: `timeout` is the whole request's deadline, retries included (one attempt at most 120 s)."""
    if timeout is None or not isinstance(critic, HttpBackend):
        return {}
    if timeout <= 0:
        raise ValueError("--timeout must be positive (seconds)")
    return {"deadline": timeout, "timeout": min(120.0, timeout)}


def _critic(
    critic: str, model: str | None, prompts: str, max_tokens: int | None, timeout: float | None, samples: int = 1
) -> object:
    spec = parse_spec(critic, "critic")
    options = _http_options(spec, timeout) | ({"samples": samples} if samples != 1 else {})
    return reward_model_from_spec(spec, model=model, prompts=prompts, max_tokens=max_tokens, **options)


def _task(prompt: str, source: str | Path | None) -> Task:
    if not prompt.strip():
        raise ValueError("the prompt is empty: pass the request the image was made for with --prompt")
    return Task.edit if source is not None else Task.t2i


def critique_image(
    image: str | Path,
    prompt: str,
    *,
    source: str | Path | None = None,
    critic: str = "fake",
    model: str | None = None,
    refine: bool = True,
    policy: RewardPolicy = "paper",
    prompts: str = "auto",
    max_tokens: int | None = None,
    timeout: float | None = None,
    samples: int = 1,
) -> dict[str, Any]:
    """`prompts`: the critic's prompt profile (house, release, or auto: release for a RationalRewards checkpoint);
    `max_tokens`: the most a critique may take (default 20480, the release's)."""
    backend = _critic(critic, model, prompts, max_tokens, timeout, samples)
    request = CritiqueRequest(
        task=_task(prompt, source),
        prompt=prompt,
        image=image_ref_from_path(image),
        source_image=image_ref_from_path(source) if source is not None else None,
        with_refinement=refine,
    )
    [result] = run_sync(_once(backend, "critique", request))
    return critique_json(result, policy) | {"prompts": prompt_profile_of(backend)}


def compare_images(
    image_a: str | Path,
    image_b: str | Path,
    prompt: str,
    *,
    source: str | Path | None = None,
    critic: str = "fake",
    model: str | None = None,
    prompts: str = "auto",
    max_tokens: int | None = None,
    timeout: float | None = None,
    samples: int = 1,
) -> dict[str, Any]:
    backend = _critic(critic, model, prompts, max_tokens, timeout, samples)
    request = CompareRequest(
        task=_task(prompt, source),
        prompt=prompt,
        image_a=image_ref_from_path(image_a),
        image_b=image_ref_from_path(image_b),
        source_image=image_ref_from_path(source) if source is not None else None,
    )
    [result] = run_sync(_once(backend, "compare", request))
    return judgement_json(result) | {"prompts": prompt_profile_of(backend)}
