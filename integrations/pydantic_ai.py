"""The critic as pydantic-ai tools (`pip install pydantic-ai-slim`):

    agent = Agent(model, tools=critic_tools(critic, LoopBackends(generator, critic)))

`critique_image`, `compare_images` and (given loop backends) `refine_image`. Tool arguments carry the descriptions
the model reads; a wrong argument or a critic that cannot answer comes back as the tool's return value
(`{"kind": "error", ...}`), so the model can correct itself and the run goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rationalrewards.integrations.tools import LoopBackends, agent_tools
from rationalrewards.rewardmodel.backends.base import RewardModel
from rationalrewards.rewardmodel.scoring import RewardPolicy

if TYPE_CHECKING:
    from pydantic_ai import Tool


def critic_tools(
    critic: RewardModel, backends: LoopBackends | None = None, *, policy: RewardPolicy = "paper"
) -> list[Tool[Any]]:
    """pydantic-ai `Tool`s over `critic` (and the loop over `backends`)."""
    from pydantic_ai import Tool

    return [
        Tool(t.function, takes_ctx=False, name=t.name, description=t.description)
        for t in agent_tools(critic, backends, policy=policy)
    ]


__all__ = ["critic_tools"]
