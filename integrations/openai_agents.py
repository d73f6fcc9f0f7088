"""The critic in the OpenAI Agents SDK (`pip install openai-agents`): function tools an agent calls, and an output
guardrail that stops a run whose final image fails a critique.

    agent = Agent(
        name="illustrator",
        tools=function_tools(critic, LoopBackends(generator, critic)),
        output_guardrails=[critique_guardrail(critic)],
    )

Tool arguments carry the descriptions the model reads; a wrong argument or a critic that cannot answer comes back as
the tool's output (`{"kind": "error", ...}`), never as an exception through the run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from rationalrewards.agents.critic_tool import critique_json
from rationalrewards.integrations import tools
from rationalrewards.rewardmodel.backends.base import RewardModel
from rationalrewards.rewardmodel.errors import RewardModelError
from rationalrewards.rewardmodel.schemas import Abstention
from rationalrewards.rewardmodel.scoring import RewardPolicy, StopRule, passes_threshold

FunctionTool = Any  # agents.FunctionTool
OutputGuardrail = Any  # agents.OutputGuardrail


def _sdk() -> Any:
    """The OpenAI Agents SDK (module `agents`), imported by name: a folder called `agents` in the working directory
    (this repository's root has one) would shadow it, and mypy resolves the name there too."""
    try:
        sdk = importlib.import_module("agents")
    except ImportError as e:
        raise ImportError("the OpenAI Agents SDK is not installed", name="agents") from e
    if not hasattr(sdk, "function_tool"):
        raise ImportError(
            f"`import agents` found {getattr(sdk, '__file__', sdk)}, not the OpenAI Agents SDK: run from another "
            "folder (or with python -P) so that the working directory does not shadow it"
        )
    return sdk


def function_tools(
    critic: RewardModel, backends: tools.LoopBackends | None = None, *, policy: RewardPolicy = "paper"
) -> list[FunctionTool]:
    """Function tools over `critic`: `critique_image`, `compare_images`, and `refine_image` given loop `backends`."""
    function_tool = _sdk().function_tool
    return [
        function_tool(t.function, name_override=t.name, description_override=t.description, strict_mode=False)
        for t in tools.agent_tools(critic, backends, policy=policy)
    ]


PromptSource = str | Callable[[Any], str | None] | None


def critique_guardrail(
    critic: RewardModel,
    *,
    prompt: PromptSource = None,
    threshold: float = 3.0,
    stop_rule: StopRule = "paper",
    trip_on_abstention: bool = True,
    name: str = "image_passes_critique",
) -> OutputGuardrail:
    """An output guardrail: critiques the image the agent's final output points at (an `image` field, or the first
    data URL, `file://` URI or image path in its text) against the request it was made for (a `prompt` field of the
    output, else `prompt`: a string, or a function of the run's context), and trips when the critique fails the stop
    rule at `threshold` (by default: an active aspect scores below 3), when there is no image or request to judge,
    or (`trip_on_abstention`) when the critic cannot judge it. The critique, or the reason, is the guardrail's
    `output_info`."""
    sdk = _sdk()
    GuardrailFunctionOutput = sdk.GuardrailFunctionOutput

    async def check(context: Any, agent: Any, output: Any) -> Any:
        image = tools.find_image(output)
        request = tools.find_prompt(output) or (prompt(context.context) if callable(prompt) else prompt)
        if image is None or not request:
            missing = (
                "the output names no image to judge"
                if image is None
                else "no request to judge the image against: give the output a `prompt` field, or prompt="
            )
            return GuardrailFunctionOutput(tools.error_result(missing), True)
        try:
            answer = await tools.judge(critic, image, request)
        except (ValueError, OSError, RewardModelError) as e:
            return GuardrailFunctionOutput(tools.error_result(e), True)
        info = critique_json(answer)
        if isinstance(answer, Abstention):
            return GuardrailFunctionOutput(info, trip_on_abstention)
        passes = passes_threshold(answer, threshold, stop_rule)
        return GuardrailFunctionOutput(info | {"passes": passes, "threshold": threshold}, not passes)

    return sdk.OutputGuardrail(guardrail_function=check, name=name)


__all__ = ["critique_guardrail", "function_tools"]
