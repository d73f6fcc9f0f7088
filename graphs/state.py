"""Typed state of the GCR graph. Plain JSON values only (image refs, critique dicts): checkpoints stay small and
portable, and `langgraph dev` can return them as they are. No torch, diffusers or vllm here."""

from __future__ import annotations

import operator
from typing import Annotated, Any, Required, TypedDict


def merge_dicts(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer for keyed records written by parallel nodes (one key per candidate)."""
    return {**(left or {}), **(right or {})}


class GCRInput(TypedDict, total=False):
    prompt: Required[str]
    seed: int
    source_image: dict[str, Any] | None  # an ImageRef dict: makes the task an edit
    sample_id: str
    tag: str  # the suite's ground-truth tag, carried through for reporting


class GenerateTask(TypedDict):
    """What one `Send` to the generate node carries: one or more candidates for one generator call."""

    prompt: str
    seeds: list[int]
    round: int
    candidates: list[int]
    source_image: dict[str, Any] | None
    sample_id: str


class GCRState(GCRInput, total=False):
    task: str
    round: int
    current_prompt: str
    candidates: Annotated[dict[str, dict[str, Any]], merge_dicts]  # "r0c1" -> {image, prompt, seed, round, ...}
    critiques: Annotated[dict[str, dict[str, Any]], merge_dicts]  # "r0c1" -> {critique | abstention, reward}
    rounds: Annotated[list[dict[str, Any]], operator.add]  # one closed record per round
    generations: Annotated[int, operator.add]
    critique_calls: Annotated[int, operator.add]
    best: dict[str, Any] | None
    stop_reason: str | None


class GCROutput(TypedDict, total=False):
    prompt: str
    sample_id: str
    tag: str
    task: str
    best: dict[str, Any] | None
    rounds: list[dict[str, Any]]
    stop_reason: str
    generations: int
    critique_calls: int


def candidate_key(round_: int, candidate: int) -> str:
    return f"r{round_}c{candidate}"
