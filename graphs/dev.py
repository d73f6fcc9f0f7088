"""The graph `langgraph dev` serves (`langgraph.json`): GCR with the sketch world's backends, bound explicitly.

`make_gcr_graph` is a graph factory (LangGraph calls it when the server starts), so importing this module builds
nothing. Images go under $RATIONALREWARDS_HOME (default ./runs/langgraph-dev).
"""

from __future__ import annotations

import os
from pathlib import Path

from langchain_core.runnables import RunnableConfig

from rationalrewards.graphs.gcr import CompiledGCRGraph, GCRContext, GCRGraph
from rationalrewards.graphs.gcr_config import GCRConfig


def sketch_backends(home: str | Path | None = None) -> GCRContext:
    """The sketch world's generator, oracle critic and the critic refiner, writing under `home`."""
    from rationalrewards.agents.refiner import CriticRefiner
    from rationalrewards.agents.world import world_named

    world = world_named("sketch")
    images = Path(home or os.environ.get("RATIONALREWARDS_HOME", "runs/langgraph-dev")) / "images"
    return GCRContext(
        generator=world.generator(images), critic=world.critic(image_dirs=[images]), refiner=CriticRefiner()
    )


def make_gcr_graph(config: RunnableConfig | None = None) -> CompiledGCRGraph:
    """A short `deep` loop (3 rounds of best-of-2) over the sketch world; a run may still pass its own context."""
    return GCRGraph(GCRConfig.preset("deep", max_rounds=3, candidates=2), backends=sketch_backends()).compile()
