"""Where agents live (issue 29): the critic and the loop as tools for MCP clients (stdio and streamable HTTP, with the
official client), the OpenAI Agents SDK (tools and an output guardrail), pydantic-ai and LangGraph's `ToolNode`;
images given the ways agents hold them; mistakes returned to the model, never raised through its loop. Every test is
written against public names, the way a user would write it."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import PYTHON, free_port
from rationalrewards import GeneratedImage, SketchGenerator, SketchOracle
from rationalrewards.integrations.tools import LoopBackends, agent_tools

TWO_CATS = "a photo of two cats"


def _passing_image(directory: Path) -> GeneratedImage:
    """A sketch image the sketch critic passes for its own prompt (the generator makes mistakes on some seeds)."""
    from rationalrewards.rewardmodel.schemas import CritiqueRequest, Task
    from rationalrewards.rewardmodel.scoring import passes_threshold

    generator, oracle = SketchGenerator(directory), SketchOracle()
    for seed in range(40):
        [made] = asyncio.run(generator.generate([TWO_CATS], [seed]))
        request = CritiqueRequest(task=Task.t2i, prompt=TWO_CATS, image=made.image)
        [answer] = asyncio.run(oracle.critique([request]))
        if passes_threshold(answer, 3.0, "paper"):
            return made
    raise AssertionError("no passing seed in 40")


def _data_url(path: str | Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


@pytest.fixture(scope="module")
def cats(tmp_path_factory: pytest.TempPathFactory) -> GeneratedImage:
    return _passing_image(tmp_path_factory.mktemp("cats"))


# ------------------------------------------------------------------ MCP ---------------------------------------------


def _mcp_env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def test_mcp_over_stdio_with_the_official_client(tmp_path: Path, cats: GeneratedImage) -> None:
    from mcp import Client, StdioServerParameters

    work = tmp_path / "work"
    params = StdioServerParameters(
        command=PYTHON,
        args=["-m", "rationalrewards", "mcp", "--generator", "sketch", "--work-dir", str(work)],
        env=_mcp_env(),
        cwd=str(tmp_path),
    )

    async def session() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with Client(params) as client:
            listed = await client.list_tools()
            seen["tools"] = {t.name: t for t in listed.tools}
            path = cats.image.uri
            seen["path"] = await client.call_tool("critique_image", {"image": path, "prompt": TWO_CATS})
            seen["uri"] = await client.call_tool(
                "compare_images", {"image_a": "file://" + path, "image_b": path, "prompt": TWO_CATS}
            )
            seen["missing"] = await client.call_tool(
                "critique_image", {"image": str(tmp_path / "no.png"), "prompt": "x"}
            )
            seen["web"] = await client.call_tool(
                "critique_image", {"image": "https://example.com/a.png", "prompt": "x"}
            )
            seen["refined"] = await client.call_tool("refine_image", {"prompt": "a photo of three clocks", "seed": 3})
            kept = seen["refined"].structured_content["image_data_url"]
            # A data URL of an image the server made: the sketch critic finds its ground truth by content.
            seen["data"] = await client.call_tool(
                "critique_image", {"image": kept, "prompt": "a photo of three clocks"}
            )
        return seen

    seen = asyncio.run(session())
    tools = seen["tools"]
    assert set(tools) == {"critique_image", "compare_images", "refine_image"}
    properties = tools["critique_image"].input_schema["properties"]
    assert all(properties[name].get("description") for name in ("image", "prompt", "source_image"))
    assert tools["critique_image"].input_schema["required"] == ["image", "prompt"]
    critique = seen["path"].structured_content
    assert not seen["path"].is_error and critique["kind"] == "critique" and critique["reward"] == 1.0
    assert seen["uri"].structured_content["preferred"] == "tie"  # the same image both ways
    assert seen["missing"].is_error and "not found" in seen["missing"].content[0].text
    assert seen["web"].is_error and "web address" in seen["web"].content[0].text
    refined = seen["refined"].structured_content
    assert (
        refined["kind"] == "refined"
        and Path(refined["image"]).is_file()
        and Path(refined["image"]).is_relative_to(work)
    )
    assert base64.b64decode(refined["image_data_url"].split(",", 1)[1]) == Path(refined["image"]).read_bytes()
    assert seen["data"].structured_content["kind"] == "critique"


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {port}")


def test_mcp_over_streamable_http_with_a_bearer_key(tmp_path: Path, cats: GeneratedImage) -> None:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    port, key = free_port(), "mcp-test-key"
    process = subprocess.Popen(
        [PYTHON, "-m", "rationalrewards", "mcp", "--transport", "http", "--port", str(port)],
        env=_mcp_env() | {"RATIONALREWARDS_MCP_API_KEY": key},
        cwd=tmp_path,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        _wait_for_port(port, process)
        assert httpx.post(url, json={}, timeout=10).status_code == 401
        assert httpx.post(url, json={}, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401

        async def session() -> Any:
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"})
            async with Client(streamable_http_client(url, http_client=http)) as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert names == {"critique_image", "compare_images"}  # no --generator: no refine_image
                return await client.call_tool(
                    "critique_image", {"image": _data_url(cats.image.uri), "prompt": TWO_CATS}
                )

        answer = asyncio.run(session())
    finally:
        process.terminate()
        process.wait(30)
    # The sketch critic cannot find the ground truth of an inlined image it did not make: an abstention, as a result.
    assert not answer.is_error and answer.structured_content["kind"] == "abstention"


def test_mcp_over_http_refuses_other_machines_without_a_key(tmp_path: Path) -> None:
    result = subprocess.run(
        [PYTHON, "-m", "rationalrewards", "mcp", "--transport", "http", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        env={k: v for k, v in _mcp_env().items() if k != "RATIONALREWARDS_MCP_API_KEY"},
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2 and "--api-key" in result.stderr and "Traceback" not in result.stderr


# ------------------------------------------------------------------ the OpenAI Agents SDK ---------------------------


def _scripted_model(turns: list[Any]) -> Any:
    """A Model of the Agents SDK that answers with the given output items, one turn each, and records its inputs."""
    from agents import Model, ModelResponse, Usage

    class Scripted(Model):
        def __init__(self) -> None:
            self.inputs: list[Any] = []

        async def get_response(self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any) -> Any:
            self.inputs.append(input)
            return ModelResponse(output=[turns.pop(0)], usage=Usage(), response_id=None)

        def stream_response(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError

    return Scripted()


def _call(name: str, arguments: dict[str, Any], call_id: str) -> Any:
    from openai.types.responses import ResponseFunctionToolCall

    return ResponseFunctionToolCall(
        type="function_call", call_id=call_id, name=name, arguments=json.dumps(arguments), id=f"fc_{call_id}"
    )


def _say(text: str) -> Any:
    from openai.types.responses import ResponseOutputMessage, ResponseOutputText

    return ResponseOutputMessage(
        id="msg_1",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
    )


@pytest.mark.parametrize("prompt", [TWO_CATS, "a photo of four clocks"], ids=["passes", "fails"])
def test_openai_agents_tools_and_the_guardrail(cats: GeneratedImage, prompt: str) -> None:
    from agents import Agent, OutputGuardrailTripwireTriggered, RunConfig, Runner
    from rationalrewards.integrations.openai_agents import critique_guardrail, function_tools

    critic = SketchOracle()
    model = _scripted_model(
        [
            _call("critique_image", {"image": "/no/such/image.png", "prompt": prompt}, "c1"),  # a mistake first
            _call("critique_image", {"image": "file://" + cats.image.uri, "prompt": prompt}, "c2"),
            _say(f"Here is your image: {cats.image.uri}"),
        ]
    )
    agent = Agent(
        name="illustrator",
        model=model,
        tools=function_tools(critic),
        output_guardrails=[critique_guardrail(critic, prompt=lambda context: context["request"])],
    )
    config = RunConfig(tracing_disabled=True)
    if prompt == TWO_CATS:
        result = asyncio.run(Runner.run(agent, prompt, context={"request": prompt}, run_config=config))
        assert cats.image.uri in result.final_output
        [guardrail] = result.output_guardrail_results
        assert guardrail.output.output_info["passes"] is True
    else:
        with pytest.raises(OutputGuardrailTripwireTriggered) as tripped:
            asyncio.run(Runner.run(agent, prompt, context={"request": prompt}, run_config=config))
        info = tripped.value.guardrail_result.output.output_info
        assert info["passes"] is False and min(v for v in info["scores"].values() if v is not None) < 3
    # The wrong path came back to the model as the tool's output; the second call judged the image.
    outputs = [item["output"] for item in model.inputs[-1] if item.get("type") == "function_call_output"]
    assert "image file not found" in outputs[0] and '"kind": "critique"' in outputs[1].replace("'", '"')


def test_the_guardrail_reads_structured_output_and_trips_on_no_image() -> None:
    from pydantic import BaseModel

    from rationalrewards.integrations.openai_agents import critique_guardrail

    class Picture(BaseModel):
        image: str
        prompt: str

    guardrail = critique_guardrail(SketchOracle())

    async def check(output: Any) -> Any:
        return await guardrail.guardrail_function(None, None, output)

    no_image = asyncio.run(check("I could not draw it."))
    assert no_image.tripwire_triggered and no_image.output_info["error"] == "the output names no image to judge"
    no_prompt = asyncio.run(check("see /tmp/picture.png"))
    assert no_prompt.tripwire_triggered and "no request" in no_prompt.output_info["error"]
    missing = asyncio.run(check(Picture(image="/missing.png", prompt=TWO_CATS)))
    assert missing.tripwire_triggered and missing.output_info["kind"] == "error"


# ------------------------------------------------------------------ pydantic-ai, LangGraph ----------------------


def test_pydantic_ai_tools_survive_a_model_that_calls_them_with_made_up_arguments(tmp_path: Path) -> None:
    from pydantic_ai import Agent
    from pydantic_ai.messages import ToolReturnPart
    from pydantic_ai.models.test import TestModel

    from rationalrewards.integrations.pydantic_ai import critic_tools

    critic = SketchOracle()
    backends = LoopBackends(SketchGenerator(tmp_path / "images"), critic)
    agent = Agent(TestModel(), tools=critic_tools(critic, backends))
    result = agent.run_sync("draw two cats")
    returns = {
        part.tool_name: part.content
        for message in result.all_messages()
        for part in message.parts
        if isinstance(part, ToolReturnPart)
    }
    assert set(returns) == {"critique_image", "compare_images", "refine_image"}
    assert returns["critique_image"]["kind"] == "error"  # TestModel's made-up image names no file
    assert returns["refine_image"]["kind"] in ("refined", "error")


def test_pydantic_ai_function_model_gets_the_critique(cats: GeneratedImage) -> None:
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
    from pydantic_ai.models.function import FunctionModel

    from rationalrewards.integrations.pydantic_ai import critic_tools

    def model(messages: list[Any], info: Any) -> ModelResponse:
        returned = [p for m in messages for p in m.parts if isinstance(p, ToolReturnPart)]
        if not returned:
            assert {t.name for t in info.function_tools} == {"critique_image", "compare_images"}
            return ModelResponse(parts=[ToolCallPart("critique_image", {"image": cats.image.uri, "prompt": TWO_CATS})])
        return ModelResponse(parts=[TextPart(f"reward {returned[0].content['reward']}")])

    assert Agent(FunctionModel(model), tools=critic_tools(SketchOracle())).run_sync("judge").output == "reward 1.0"


def test_langgraph_tool_node_returns_mistakes_as_tool_messages(cats: GeneratedImage) -> None:
    from langchain_core.messages import AIMessage
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode

    from rationalrewards.integrations.langchain import critic_tools

    calls = [
        {"name": "critique_image", "args": {"image": _data_url(cats.image.uri), "prompt": TWO_CATS}, "id": "1"},
        {"name": "critique_image", "args": {"image": "file:///nowhere/x.png", "prompt": TWO_CATS}, "id": "2"},
        {
            "name": "compare_images",
            "args": {"image_a": cats.image.uri, "image_b": cats.image.uri, "prompt": ""},
            "id": "3",
        },
    ]
    builder = StateGraph(MessagesState)
    builder.add_node("tools", ToolNode(critic_tools(SketchOracle())))
    builder.add_edge(START, "tools")
    graph = builder.compile()
    out = asyncio.run(graph.ainvoke({"messages": [AIMessage(content="", tool_calls=calls)]}))
    out["messages"] = out["messages"][1:]  # the tool messages after the model's call
    answers = [json.loads(m.content) for m in out["messages"]]
    assert answers[0]["kind"] == "abstention"  # an inlined image the sketch critic did not make: it abstains
    assert answers[1] == {"kind": "error", "error": "image file not found: /nowhere/x.png"}
    assert answers[2]["kind"] == "error" and "prompt is empty" in answers[2]["error"]


def test_every_adapter_offers_the_same_tools(tmp_path: Path) -> None:
    backends = LoopBackends(SketchGenerator(tmp_path), SketchOracle())
    names = [t.name for t in agent_tools(backends.critic, backends)]
    assert names == ["critique_image", "compare_images", "refine_image"]
    assert [t.name for t in agent_tools(backends.critic)] == names[:2]


# ------------------------------------------------------------------ missing extras ------------------------------

MISSING = [
    ("torch", ["tiny", "{tmp}/tiny"], "torch is not installed: pip install 'rationalrewards[torch]'"),
    ("ray", ["refine", "x", "--critic", "ray:sketch", "--out", "{tmp}/r"], "rationalrewards[ray]"),
    (
        "psycopg,langgraph.checkpoint.postgres",
        ["refine", "x", "--checkpointer", "postgres://u@127.0.0.1:1/db", "--out", "{tmp}/p"],
        "rationalrewards[postgres]",
    ),
    ("diffusers", ["refine", "x", "--generator", "{tmp}", "--out", "{tmp}/d"], "rationalrewards[train]"),
    ("mcp", ["mcp"], "mcp is not installed: pip install 'rationalrewards[integrations]'"),
]


@pytest.mark.parametrize(("blocked", "args", "message"), MISSING, ids=[m[0].split(",")[0] for m in MISSING])
def test_a_missing_extra_is_one_line_naming_it(tmp_path: Path, blocked: str, args: list[str], message: str) -> None:
    """The module is made unimportable (as when its extra is not installed); the command says which extra, in one
    line, with no traceback."""
    script = (
        "import sys\n"
        f"for name in {blocked.split(',')!r}: sys.modules[name] = None\n"
        "from rationalrewards.cli.main import main\n"
        "sys.argv = ['rationalrewards', *sys.argv[1:]]\n"
        "main()\n"
    )
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = subprocess.run(
        [PYTHON, "-P", "-c", script, *argv], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=_mcp_env()
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr, result.stderr


def test_the_agents_sdk_shadowed_by_a_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "__init__.py").write_text("")
    script = (
        "import sys; sys.path.insert(0, '.')\n"
        "from rationalrewards.integrations.openai_agents import function_tools\n"
        "from rationalrewards import SketchOracle\n"
        "function_tools(SketchOracle())\n"
    )
    result = subprocess.run([sys.executable, "-P", "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode != 0 and "not the OpenAI Agents SDK" in result.stderr
