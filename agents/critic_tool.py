"""The critic for other agent workflows: a LangChain tool (`critique_image`) and a LangGraph node factory.

Both wrap any `RewardModel` (default: the sketch world's oracle) and return plain JSON: scores, justifications,
reward, refined request, or the abstention, so a planner agent can act on the critique.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from rationalrewards.rewardmodel.backends.base import RewardModel
from rationalrewards.rewardmodel.images import as_image_ref
from rationalrewards.rewardmodel.schemas import Abstention, CritiqueRequest, ImageRef, Task
from rationalrewards.rewardmodel.scoring import RewardPolicy, reward_or_none


def _default_critic() -> RewardModel:
    from rationalrewards.agents.sketch.oracle import SketchOracle

    return SketchOracle()


def _as_ref(image: Any) -> ImageRef:
    if isinstance(image, dict):
        return ImageRef.model_validate(image)
    return as_image_ref(image)


async def critique_to_json(critic: RewardModel, image: Any, prompt: str, source_image: Any = None,
                           policy: RewardPolicy = "paper") -> dict[str, Any]:
    request = CritiqueRequest(task=Task.edit if source_image is not None else Task.t2i, prompt=prompt, image=_as_ref(image),
                              source_image=_as_ref(source_image) if source_image is not None else None)
    [result] = await critic.critique([request])
    if isinstance(result, Abstention):
        return {"kind": "abstention", "reason": result.reason, "detail": result.detail}
    return {
        "kind": "critique",
        "scores": result.scores,
        "justifications": {a.value: result.assessments[a].justification for a in result.task.aspects},
        "reward": reward_or_none(result, policy),
        "summary": result.summary,
        "refined_request": result.refined_request,
    }


def critique_image_tool(critic: RewardModel | None = None, policy: RewardPolicy = "paper") -> Any:
    """A LangChain `StructuredTool` named `critique_image`."""
    from langchain_core.tools import StructuredTool

    backend = critic or _default_critic()

    async def critique_image(image_path: str, prompt: str, source_image_path: str | None = None) -> dict[str, Any]:
        """Critique an image against the request it was made for. Returns per-aspect scores (1-4, None for N/A),
        justifications, a reward in [0, 1], and a refined request that would fix the problems found."""
        return await critique_to_json(backend, image_path, prompt, source_image_path, policy)

    def critique_image_sync(image_path: str, prompt: str, source_image_path: str | None = None) -> dict[str, Any]:
        from rationalrewards.rewardmodel.scoring import run_sync

        return run_sync(critique_image(image_path, prompt, source_image_path))

    return StructuredTool.from_function(func=critique_image_sync, coroutine=critique_image, name="critique_image",
                                        description=critique_image.__doc__ or "")


def make_critic_node(
    critic: RewardModel | None = None,
    *,
    image_key: str = "image",
    prompt_key: str = "prompt",
    source_key: str | None = None,
    output_key: str = "critique",
    policy: RewardPolicy = "paper",
) -> Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]:
    """A LangGraph node: reads an image (ImageRef dict, path) and a prompt from state, writes the critique JSON."""
    backend = critic or _default_critic()

    async def critic_node(state: dict[str, Any]) -> dict[str, Any]:
        source = state.get(source_key) if source_key else None
        return {output_key: await critique_to_json(backend, state[image_key], state[prompt_key], source, policy)}

    return critic_node
