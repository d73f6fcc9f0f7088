"""The critic for other agent workflows: a LangChain tool (`critique_image`) and a LangGraph node factory.

Both wrap a `RewardModel` given explicitly (the sketch world's oracle, a served critic, ...) and return plain JSON
(`critique_json`): scores, justifications, reward, refined request, or the abstention, so a planner agent can act on
the critique.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from rationalrewards.rewardmodel.backends.base import RewardModel
from rationalrewards.rewardmodel.images import as_image_ref
from rationalrewards.rewardmodel.schemas import Abstention, Critique, CritiqueRequest, ImageRef, PairwiseJudgement, Task
from rationalrewards.rewardmodel.scoring import RewardPolicy, reward_or_none


def _common(result: Critique | PairwiseJudgement) -> dict[str, object]:
    return {
        "kind": result.kind,
        "task": result.task.value,
        "summary": result.summary,
        "warnings": list(result.warnings),
        "model": result.model,
        "truncated": result.truncated,
    }


def critique_json(result: Critique | Abstention, policy: RewardPolicy = "paper") -> dict[str, object]:
    """The JSON every caller of a single critique gets (CLI, Python API, tool, node): the scores, justifications and
    refinement of a critique with its reward under `policy`, or the abstention with its reason."""
    if isinstance(result, Abstention):
        return result.model_dump(mode="json")
    justifications = {
        a.value: result.assessments[a].justification for a in result.task.aspects if a in result.assessments
    }
    return _common(result) | {
        "scores": result.scores,
        "justifications": justifications,
        "reward": reward_or_none(result, policy),
        "policy": policy,
        "refined_request": result.refined_request,
    }


def judgement_json(result: PairwiseJudgement | Abstention) -> dict[str, object]:
    """The JSON of one pairwise judgement (or abstention)."""
    if isinstance(result, Abstention):
        return result.model_dump(mode="json")
    return _common(result) | {"scores_a": result.scores_a, "scores_b": result.scores_b, "preferred": result.preferred}


def _as_ref(image: object) -> ImageRef:
    if isinstance(image, dict):
        return ImageRef.model_validate(image)
    return as_image_ref(image)


async def critique_to_json(
    critic: RewardModel, image: object, prompt: str, source_image: Any = None, policy: RewardPolicy = "paper"
) -> dict[str, object]:
    request = CritiqueRequest(
        task=Task.edit if source_image is not None else Task.t2i,
        prompt=prompt,
        image=_as_ref(image),
        source_image=_as_ref(source_image) if source_image is not None else None,
    )
    [result] = await critic.critique([request])
    return critique_json(result, policy)


def critique_image_tool(critic: RewardModel, policy: RewardPolicy = "paper") -> object:
    """A LangChain `StructuredTool` named `critique_image` over `critic`."""
    from langchain_core.tools import StructuredTool

    async def critique_image(image_path: str, prompt: str, source_image_path: str | None = None) -> dict[str, object]:
        """Critique an image against the request it was made for. Returns per-aspect scores (1-4, None for N/A),
        justifications, a reward in [0, 1], and a refined request that would fix the problems found."""
        return await critique_to_json(critic, image_path, prompt, source_image_path, policy)

    def critique_image_sync(image_path: str, prompt: str, source_image_path: str | None = None) -> dict[str, object]:
        from rationalrewards.plumbing.aio import run_sync

        return run_sync(critique_image(image_path, prompt, source_image_path))

    return StructuredTool.from_function(
        func=critique_image_sync,
        coroutine=critique_image,
        name="critique_image",
        description=critique_image.__doc__ or "",
    )


def make_critic_node(
    critic: RewardModel,
    *,
    image_key: str = "image",
    prompt_key: str = "prompt",
    source_key: str | None = None,
    output_key: str = "critique",
    policy: RewardPolicy = "paper",
) -> Callable[[dict[str, object]], Awaitable[dict[str, object]]]:
    """A LangGraph node: reads an image (ImageRef dict, path) and a prompt from state, writes the critique JSON."""

    async def critic_node(state: dict[str, Any]) -> dict[str, object]:
        source = state.get(source_key) if source_key else None
        return {output_key: await critique_to_json(critic, state[image_key], state[prompt_key], source, policy)}

    return critic_node
