"""A multi-agent workflow that embeds the RationalRewards critic as a LangChain tool.

A planner agent turns a goal into a prompt; an artist agent renders it (sketch world); the planner calls the
`critique_image` tool and either accepts the image or rewrites its prompt from the critique, up to three tries.

    .venv/bin/python examples/planner_with_critic.py "a photo of three red apples left of a blue cup"
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from typing import Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph

from rationalrewards.integrations.langchain import critique_image_tool
from rationalrewards.sketch.generator import SketchGenerator
from rationalrewards.sketch.oracle import SketchOracle


class PlanState(TypedDict, total=False):
    goal: str
    prompt: str
    image: str
    critique: dict[str, Any]
    tries: int
    log: list[str]


def build_planner_graph(generator: SketchGenerator, tool: Any, max_tries: int = 3) -> Any:
    async def planner(state: PlanState) -> dict[str, Any]:
        critique = state.get("critique")
        if critique is None:
            prompt = state["goal"]  # first plan: the goal as written
        else:
            prompt = critique.get("refined_request") or state["prompt"]
        return {"prompt": prompt, "log": state.get("log", []) + [f"planner: {prompt}"]}

    async def artist(state: PlanState) -> dict[str, Any]:
        [made] = await generator.generate([state["prompt"]], [state.get("tries", 0)])
        return {"image": made.image.uri, "tries": state.get("tries", 0) + 1}

    async def reviewer(state: PlanState) -> dict[str, Any]:
        # The tool is called exactly as an LLM agent would call it: by name, with JSON arguments.
        critique = await tool.ainvoke({"image": state["image"], "prompt": state["goal"]})
        verdict = "abstained" if critique["kind"] == "abstention" else f"reward {critique['reward']:.2f}"
        return {"critique": critique, "log": state["log"] + [f"critic: {verdict}"]}

    def decide(state: PlanState) -> Literal["planner", "__end__"]:
        critique = state["critique"]
        good = critique["kind"] == "critique" and all(s is None or s >= 3.0 for s in critique["scores"].values())
        return END if good or state["tries"] >= max_tries else "planner"

    builder = StateGraph(PlanState)
    builder.add_node("planner", planner)
    builder.add_node("artist", artist)
    builder.add_node("reviewer", reviewer)
    builder.add_edge(START, "planner")
    builder.add_edge("planner", "artist")
    builder.add_edge("artist", "reviewer")
    builder.add_conditional_edges("reviewer", decide, ["planner", END])
    return builder.compile()


async def main(goal: str) -> PlanState:
    with tempfile.TemporaryDirectory() as tmp:
        graph = build_planner_graph(SketchGenerator(tmp), critique_image_tool(SketchOracle()))
        final = await graph.ainvoke({"goal": goal})
        for line in final["log"]:
            print(line)
        return final


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "a photo of three red apples left of a blue cup"))
