"""What a caller outside the graph needs of a finished GCR run, in one JSON shape: the MCP and agent tools
(`integrations/tools.py`) and the refining Images API server (`runtime/refiner_server.py`) answer with it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rationalrewards.agents.critic_tool import critique_json
from rationalrewards.graphs.state import critique_of
from rationalrewards.rewardmodel.schemas import ImageRef


def refine_outcome(out: Mapping[str, Any]) -> tuple[dict[str, object], ImageRef | None]:
    """(the run as JSON, the kept image's ref). The JSON: `stop_reason`, `rounds` (each round's prompt and reward),
    `generations`, and for the kept image its `prompt`, `reward`, `reward_note` (why a reward is missing) and
    `critique`."""
    result: dict[str, object] = {
        "stop_reason": out.get("stop_reason"),
        "rounds": [{"prompt": r["prompt"], "reward": r["reward"]} for r in out.get("rounds", [])],
        "generations": out.get("generations"),
    }
    best = out.get("best")
    if best is None:
        return result, None
    critique = critique_of(best)
    result |= {
        "prompt": best["prompt"],
        "reward": best["reward"],
        "reward_note": best.get("reward_note"),
        "critique": critique_json(critique) if critique is not None else None,
    }
    return result, ImageRef.model_validate(best["image"])


__all__ = ["refine_outcome"]
