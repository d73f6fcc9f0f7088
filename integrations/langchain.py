"""The critic as LangChain tools (`critique_image`, `compare_images`) and as a LangGraph node, for multi-agent
workflows. Arguments carry descriptions the model reads; a wrong argument or a critic that cannot answer comes back
as the tool's result (`{"kind": "error", ...}` or the abstention), so a `ToolNode` never raises on it."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from rationalrewards.integrations import tools
from rationalrewards.plumbing.aio import run_sync
from rationalrewards.rewardmodel.backends.base import RewardModel
from rationalrewards.rewardmodel.scoring import RewardPolicy


def critic_tools(
    critic: RewardModel, backends: tools.LoopBackends | None = None, *, policy: RewardPolicy = "paper"
) -> list[Any]:
    """LangChain `StructuredTool`s over `critic`: `critique_image`, `compare_images`, and `refine_image` given loop
    `backends`. Each runs async (`ainvoke`, a `ToolNode`) or sync (`invoke`)."""
    from langchain_core.tools import StructuredTool

    made = []
    for tool in tools.agent_tools(critic, backends, policy=policy):
        function = tool.function

        def sync(*args: Any, _function: Any = function, **kwargs: Any) -> dict[str, object]:
            return run_sync(_function(*args, **kwargs))

        made.append(
            StructuredTool.from_function(
                coroutine=function,
                func=functools.wraps(function)(sync),
                name=tool.name,
                description=tool.description,
            )
        )
    return made


def critique_image_tool(critic: RewardModel, policy: RewardPolicy = "paper") -> Any:
    """The `critique_image` tool alone."""
    return critic_tools(critic, policy=policy)[0]


def compare_images_tool(critic: RewardModel) -> Any:
    """The `compare_images` tool alone."""
    return critic_tools(critic)[1]


def make_critic_node(
    critic: RewardModel,
    *,
    image_key: str = "image",
    prompt_key: str = "prompt",
    source_key: str | None = None,
    output_key: str = "critique",
    policy: RewardPolicy = "paper",
) -> Callable[[Mapping[str, object]], Awaitable[dict[str, object]]]:
    """A LangGraph node: reads an image (any form `as_image_ref` takes) and a prompt from state, writes the critique
    JSON (or the error) under `output_key`."""

    async def critic_node(state: Mapping[str, object]) -> dict[str, object]:
        source = state.get(source_key) if source_key else None
        prompt = state.get(prompt_key)
        result = await tools.critique(critic, state.get(image_key), str(prompt or ""), source, policy=policy)
        return {output_key: result}

    return critic_node


__all__ = ["compare_images_tool", "critic_tools", "critique_image_tool", "make_critic_node"]
