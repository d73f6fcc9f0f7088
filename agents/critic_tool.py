"""The JSON a single critique or comparison becomes, for every caller that is not Python: the CLI's `--json`, the
agent tools (`integrations/`), MCP. Scores, justifications, reward and refined request, or the abstention with its
reason, so a planner agent can act on the critique."""

from __future__ import annotations

from rationalrewards.rewardmodel.schemas import Abstention, Critique, PairwiseJudgement
from rationalrewards.rewardmodel.scoring import RewardPolicy, reward_or_none


def _common(result: Critique | PairwiseJudgement) -> dict[str, object]:
    return {
        "kind": result.kind,
        "task": result.task.value,
        "summary": result.summary,
        "warnings": list(result.warnings),
        "model": result.model,
        "truncated": result.truncated,
    } | ({"samples": result.samples, "spread": result.spread} if result.samples > 1 else {})


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
