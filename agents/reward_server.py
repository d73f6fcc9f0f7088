"""`rationalrewards serve-reward`: any critic behind the remote reward protocol RL frameworks call (Flow-Factory's
`POST /compute`), with this project's parsing, batching and abstention handling.

The protocol, as RL frameworks speak it:
- `GET /health` -> `{"status": "ok"}`;
- `POST /compute` with JSON `{"prompts": [str], "images": [base64 PNG/JPEG], "condition_images": [[base64, ...] per
  sample] (edits; optional), "extra": {...} (optional)}` -> `{"rewards": [float]}`, one per sample, in order.

What we add beside `rewards`, which a client of the plain protocol ignores:
- `mask`: 1 where the critic scored the sample, 0 where it abstained (a request it could not judge, an unparseable
  or cut answer, a server error). An abstained sample's entry in `rewards` is the documented `fallback`, never a
  made-up score passed off as one: by default the mean of the request's scored samples (neutral for group-relative
  advantages; 0.5 when none scored), or the number given with `--fallback`.
- `abstentions`: the reason per sample (null where scored); `scores`: the per-aspect 1-4 scores (null for N/A);
  `policy` and `fallback`: how `rewards` were made.
The rewards are `CritiqueReward`'s, the same function `rl --critic` uses, so both paths give equal rewards.

An edit sample's first condition image is its source; the reward protocol allows several, and a critique reads one,
so more than one is refused by name. At the edge: `plumbing/serving.py` (a bearer key, `--api-key` or
$RATIONALREWARDS_SERVE_API_KEY, required beyond loopback; bounded connections; body deadlines).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import statistics
from dataclasses import dataclass
from typing import Any

import structlog

from rationalrewards.agents.generator_server import BadRequest
from rationalrewards.plumbing.redact import Secret
from rationalrewards.plumbing.serving import (
    ConnectionEdge,
    EdgeLimits,
    bearer_middleware,
    check_binding,
    read_body,
    run_guarded,
)
from rationalrewards.rewardmodel.backends.base import RewardModel
from rationalrewards.rewardmodel.images import max_image_bytes
from rationalrewards.rewardmodel.reward_fn import CritiqueReward
from rationalrewards.rewardmodel.schemas import Abstention, Critique
from rationalrewards.rewardmodel.scoring import RewardPolicy, reward_or_none

log = structlog.get_logger(__name__)
MAX_SAMPLES = 1024
NO_SCORE_FALLBACK = 0.5  # the fallback when no sample of a request was scored: the reward scale's midpoint


def _image_bytes(value: object, where: str) -> bytes:
    """A base64 image (plain, or a `data:` URL as some clients send)."""
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{where} must be a base64-encoded image")
    payload = value.partition(",")[2] if value.startswith("data:") else value
    if len(payload) * 3 // 4 > max_image_bytes():
        raise BadRequest(f"{where} is larger than an image may be")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as e:
        raise BadRequest(f"{where} is not valid base64 ({e})") from e


@dataclass
class ComputeRequest:
    prompts: list[str]
    images: list[bytes]
    sources: list[bytes | None]

    @classmethod
    def read(cls, body: object) -> ComputeRequest:
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object with prompts and images")
        prompts, images = body.get("prompts"), body.get("images")
        if not isinstance(prompts, list) or not all(isinstance(p, str) and p.strip() for p in prompts):
            raise BadRequest("prompts must be a list of non-empty strings")
        if not isinstance(images, list) or len(images) != len(prompts):
            raise BadRequest(f"images must be a list with one image per prompt ({len(prompts)} prompts)")
        if len(prompts) > MAX_SAMPLES:
            raise BadRequest(f"{len(prompts)} samples in one request; at most {MAX_SAMPLES}")
        if body.get("videos") or body.get("condition_videos"):
            raise BadRequest("videos are not scored here: this critic judges images")
        conditions = body.get("condition_images") or [None] * len(prompts)
        if not isinstance(conditions, list) or len(conditions) != len(prompts):
            raise BadRequest("condition_images must hold one list of images per sample")
        sources: list[bytes | None] = []
        for k, condition in enumerate(conditions):
            if not condition:
                sources.append(None)
            elif isinstance(condition, list) and len(condition) == 1:
                sources.append(_image_bytes(condition[0], f"condition_images[{k}][0]"))
            else:
                raise BadRequest(
                    f"condition_images[{k}] holds {len(condition) if isinstance(condition, list) else 'no list of'} "
                    "images; an edit is judged against one source image"
                )
        return cls(prompts, [_image_bytes(image, f"images[{k}]") for k, image in enumerate(images)], sources)


class RewardService:
    """Compute requests in, rewards with masks out (the HTTP layer is `make_app`)."""

    def __init__(self, critic: RewardModel, *, policy: RewardPolicy = "paper", fallback: float | None = None) -> None:
        self.reward = CritiqueReward(critic, policy)
        self.fallback = fallback
        self.served = 0

    async def compute(self, request: ComputeRequest) -> dict[str, object]:
        results = await self.reward.acritique(
            request.prompts, images=request.images, source_images=request.sources if any(request.sources) else None
        )
        rewards = [reward_or_none(r, self.reward.policy) for r in results]
        scored = [r for r in rewards if r is not None]
        fallback = (
            self.fallback if self.fallback is not None else (statistics.fmean(scored) if scored else NO_SCORE_FALLBACK)
        )
        self.served += len(results)
        return {
            "rewards": [fallback if r is None else r for r in rewards],
            "mask": [0 if r is None else 1 for r in rewards],
            "abstentions": [f"{r.reason}: {r.detail}"[:300] if isinstance(r, Abstention) else None for r in results],
            "scores": [r.scores if isinstance(r, Critique) else None for r in results],
            "policy": self.reward.policy,
            "fallback": fallback,
        }


def make_app(
    service: RewardService, *, api_key: Secret | None = None, edge: ConnectionEdge | None = None, max_body_mb: int = 256
) -> Any:
    from aiohttp import web

    edge = edge or ConnectionEdge(EdgeLimits())

    def error(status: int, message: str) -> web.Response:
        return web.json_response({"detail": message}, status=status)

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "served": service.served})

    async def compute(request: web.Request) -> web.Response:
        body = await read_body(request, max_body_mb << 20, edge.limits.request_timeout)
        try:
            parsed = ComputeRequest.read(json.loads(body))
        except (ValueError, RecursionError) as e:
            return error(400, str(e) if isinstance(e, BadRequest) else "the body is not JSON")
        try:
            return web.json_response(await service.compute(parsed))
        except ValueError as e:  # an image the intake refuses, a prompt a request cannot carry
            return error(400, f"{type(e).__name__}: {e}")
        except Exception as e:
            log.exception("reward_server.failed")
            return error(500, f"{type(e).__name__}: {e}")

    app = web.Application(
        client_max_size=max_body_mb << 20,
        middlewares=[edge.middleware(), bearer_middleware(api_key)],  # type: ignore[list-item]
    )
    app.router.add_get("/health", health)
    app.router.add_post("/compute", compute)
    return app


def serve_reward(
    service: RewardService,
    *,
    host: str = "127.0.0.1",
    port: int = 8300,
    api_key: Secret | None = None,
    limits: EdgeLimits | None = None,
) -> None:
    """Serve until interrupted (blocking). Refuses to bind beyond loopback without an API key."""
    check_binding(host, api_key)
    edge = ConnectionEdge(limits or EdgeLimits())
    log.info("reward_server.start", url=f"http://{host}:{port}/compute", auth=api_key is not None)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_guarded(make_app(service, api_key=api_key, edge=edge), host, port, edge))


__all__ = ["ComputeRequest", "RewardService", "make_app", "serve_reward"]
