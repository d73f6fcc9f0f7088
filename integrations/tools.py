"""The critic and the loop as tools an agent calls: one set of functions, one image-argument reader, one error rule,
behind every framework's adapter (LangChain in `integrations/langchain.py`, the OpenAI Agents SDK in
`integrations/openai_agents.py`, pydantic-ai in `integrations/pydantic_ai.py`, MCP in `integrations/mcp_server.py`).

- Image arguments are whatever an agent holds: a file path, a `file://` URI, a `data:` URL (or bytes, a PIL image or
  an `ImageRef` from Python), read by `rewardmodel.images.as_image_ref`.
- A mistake in the arguments (a path that does not exist, a web address, an empty prompt) or a critic that cannot
  answer is returned as a result the model can read (`{"kind": "error", "error": ...}` or the abstention), never
  raised through the agent's loop: one wrong call must not end the conversation.
- The argument descriptions below are what the model sees.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import Field

from rationalrewards.agents.critic_tool import critique_json, judgement_json
from rationalrewards.agents.generator import ImageGenerator
from rationalrewards.agents.refiner import CriticRefiner, PromptRefiner
from rationalrewards.rewardmodel.backends.base import RewardModel
from rationalrewards.rewardmodel.errors import RewardModelError
from rationalrewards.rewardmodel.images import as_image_ref, read_image_bytes
from rationalrewards.rewardmodel.schemas import Abstention, CompareRequest, Critique, CritiqueRequest, ImageRef, Task
from rationalrewards.rewardmodel.scoring import RewardPolicy

IMAGE_HELP = "The image to judge: a file path, a file:// URI or a data: URL."
PROMPT_HELP = "The request the image was made for (for an edit, the edit instruction)."
SOURCE_HELP = "For an edit: the source image, as a file path, file:// URI or data: URL. Leave empty for text-to-image."
IMAGE_A_HELP = "The first image: a file path, a file:// URI or a data: URL."
IMAGE_B_HELP = "The second image: a file path, a file:// URI or a data: URL."
REFINE_PROMPT_HELP = "What to generate (or, with a source image, the edit instruction)."
PRESET_HELP = "paper (one refinement, as the paper), release (the released script's rule) or deep (rounds, best-of-N)."
SEED_HELP = "Seed of the first generation."

# The arguments as every framework reads them (pydantic, the OpenAI Agents SDK, pydantic-ai and MCP all take a
# description from `Annotated[..., Field(description=...)]`).
ImageArg = Annotated[str, Field(description=IMAGE_HELP)]
ImageAArg = Annotated[str, Field(description=IMAGE_A_HELP)]
ImageBArg = Annotated[str, Field(description=IMAGE_B_HELP)]
PromptArg = Annotated[str, Field(description=PROMPT_HELP)]
SourceArg = Annotated[str | None, Field(description=SOURCE_HELP)]
RefinePromptArg = Annotated[str, Field(description=REFINE_PROMPT_HELP)]
PresetArg = Annotated[str, Field(description=PRESET_HELP)]
SeedArg = Annotated[int, Field(description=SEED_HELP)]

CRITIQUE_DOC = (
    "Critique an image against the request it was made for. Returns per-aspect scores (1-4; null for not applicable), "
    "justifications, a reward in [0, 1], and a refined request that would fix the problems found; or why the critic "
    "could not judge it."
)
COMPARE_DOC = (
    "Compare two images made for one request. Returns per-aspect scores for each and which one is preferred (A, B or "
    "tie), by the summed scores."
)
REFINE_DOC = (
    "Generate an image for a request, critique it, and regenerate from the critic's refined request while it falls "
    "short (Generate-Critique-Refine). Returns the kept image, its critique, the prompt of each round and why the "
    "loop stopped."
)

ToolResult = dict[str, object]


def error_result(error: BaseException | str) -> ToolResult:
    """What a tool returns when its arguments are wrong or its backend failed: a message the model can act on."""
    return {"kind": "error", "error": str(error)}


def _task(source: ImageRef | None) -> Task:
    return Task.edit if source is not None else Task.t2i


def _prompt(prompt: str) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("the prompt is empty: give the request the image was made for")
    return prompt


async def judge(critic: RewardModel, image: object, prompt: str, source_image: object = None) -> Critique | Abstention:
    """The typed critique of one image (for Python callers that act on it: guardrails, nodes). Raises ValueError
    (wrong arguments), OSError or RewardModelError; the tool functions below turn those into results."""
    source = as_image_ref(source_image, "source_image") if source_image not in (None, "") else None
    request = CritiqueRequest(
        task=_task(source), prompt=_prompt(prompt), image=as_image_ref(image, "image"), source_image=source
    )
    [result] = await critic.critique([request])
    return result


async def critique(
    critic: RewardModel,
    image: object,
    prompt: str,
    source_image: object = None,
    *,
    policy: RewardPolicy = "paper",
) -> ToolResult:
    """`CRITIQUE_DOC`; argument mistakes and failures come back as results (see the module docstring)."""
    try:
        result = await judge(critic, image, prompt, source_image)
    except (ValueError, RewardModelError, OSError) as e:
        return error_result(e)
    return critique_json(result, policy)


async def compare(
    critic: RewardModel, image_a: object, image_b: object, prompt: str, source_image: object = None
) -> ToolResult:
    try:
        source = as_image_ref(source_image, "source_image") if source_image not in (None, "") else None
        request = CompareRequest(
            task=_task(source),
            prompt=_prompt(prompt),
            image_a=as_image_ref(image_a, "image_a"),
            image_b=as_image_ref(image_b, "image_b"),
            source_image=source,
        )
        [result] = await critic.compare([request])
    except (ValueError, RewardModelError, OSError) as e:
        return error_result(e)
    return judgement_json(result)


@dataclass(frozen=True)
class LoopBackends:
    """What `refine` runs with: a generator and a critic (a refiner too; by default the critique's refined request)."""

    generator: ImageGenerator
    critic: RewardModel
    refiner: PromptRefiner = field(default_factory=CriticRefiner)


async def refine(
    backends: LoopBackends,
    prompt: str,
    source_image: object = None,
    *,
    preset: str = "paper",
    seed: int = 0,
    inline_image: bool = True,
) -> ToolResult:
    """`REFINE_DOC`. `inline_image`: the kept image also as a data URL (for clients on another machine)."""
    from rationalrewards.graphs.gcr import GCRContext, build_gcr_graph
    from rationalrewards.graphs.gcr_config import GCRConfig
    from rationalrewards.graphs.outcome import refine_outcome
    from rationalrewards.graphs.state import GCRInput, image_ref_dict

    try:
        config = GCRConfig.preset(preset)
        source = as_image_ref(source_image, "source_image") if source_image not in (None, "") else None
        inputs = GCRInput(prompt=_prompt(prompt), seed=int(seed))
        if source is not None:
            inputs["source_image"] = image_ref_dict(source)
        context = GCRContext(generator=backends.generator, critic=backends.critic, refiner=backends.refiner)
        out = await build_gcr_graph(config).ainvoke(inputs, context=context)
    except (ValueError, RewardModelError, OSError) as e:
        return error_result(e)
    outcome, kept = refine_outcome(out)
    result: ToolResult = {"kind": "refined"} | outcome
    if kept is not None:
        result["image"] = str(Path(kept.uri.removeprefix("file://"))) if not kept.uri.startswith("data:") else kept.uri
        if inline_image:
            result["image_data_url"] = _data_url(kept)
    return result


@dataclass(frozen=True)
class AgentTool:
    """One tool as every framework's adapter takes it: a name, what the model reads about it, and an async function
    whose annotated arguments carry their descriptions. It returns a result, never raises on bad arguments."""

    name: str
    description: str
    function: Callable[..., Awaitable[ToolResult]]


def agent_tools(
    critic: RewardModel, backends: LoopBackends | None = None, *, policy: RewardPolicy = "paper"
) -> list[AgentTool]:
    """`critique_image` and `compare_images` over `critic`, and `refine_image` when loop `backends` are given."""

    async def critique_image(image: ImageArg, prompt: PromptArg, source_image: SourceArg = None) -> ToolResult:
        return await critique(critic, image, prompt, source_image, policy=policy)

    async def compare_images(
        image_a: ImageAArg, image_b: ImageBArg, prompt: PromptArg, source_image: SourceArg = None
    ) -> ToolResult:
        return await compare(critic, image_a, image_b, prompt, source_image)

    made = [
        AgentTool("critique_image", CRITIQUE_DOC, critique_image),
        AgentTool("compare_images", COMPARE_DOC, compare_images),
    ]
    if backends is not None:

        async def refine_image(
            prompt: RefinePromptArg, source_image: SourceArg = None, preset: PresetArg = "paper", seed: SeedArg = 0
        ) -> ToolResult:
            return await refine(backends, prompt, source_image, preset=preset, seed=seed)

        made.append(AgentTool("refine_image", REFINE_DOC, refine_image))
    return made


_IMAGE_IN_TEXT = re.compile(
    r"data:image/[a-z+.-]+;base64,[A-Za-z0-9+/=]+"  # a data URL
    r"|file://\S+?\.(?:png|jpe?g|webp|gif|bmp)\b"  # a file:// URI
    r"|(?:~|\.{0,2}/|[A-Za-z]:\\)?[\w./\\-]+\.(?:png|jpe?g|webp|gif|bmp)\b",  # a path with an image suffix
    re.IGNORECASE,
)


def find_image(output: object) -> object | None:
    """The image an agent's output points at: an `image` field or key (a model's structured output), else the first
    data URL, `file://` URI or image path in its text. None when there is none."""
    if isinstance(output, dict) and output.get("image"):
        return output["image"]
    image = None if isinstance(output, str | dict) else getattr(output, "image", None)
    if image:
        return image
    match = _IMAGE_IN_TEXT.search(str(output))
    return match.group(0) if match else None


def find_prompt(output: object) -> str | None:
    """The request an agent's structured output says its image was made for (a `prompt` field or key)."""
    prompt = output.get("prompt") if isinstance(output, dict) else getattr(output, "prompt", None)
    return prompt if isinstance(prompt, str) and prompt.strip() else None


def _data_url(ref: ImageRef) -> str:
    if ref.uri.startswith("data:"):
        return ref.uri
    return "data:image/png;base64," + base64.b64encode(read_image_bytes(ref)).decode("ascii")


__all__ = [
    "COMPARE_DOC",
    "CRITIQUE_DOC",
    "REFINE_DOC",
    "AgentTool",
    "ImageAArg",
    "ImageArg",
    "ImageBArg",
    "LoopBackends",
    "PresetArg",
    "PromptArg",
    "RefinePromptArg",
    "SeedArg",
    "SourceArg",
    "ToolResult",
    "agent_tools",
    "compare",
    "critique",
    "error_result",
    "find_image",
    "find_prompt",
    "judge",
    "refine",
]
