"""Several rewards at once (`rl --reward SPEC[:WEIGHT]`, repeated): which rewards, with what weight, and how they make
one signal (pure logic, no tensors).

A term is one of:
- `critique`: the critic's reward under the reward policy (the default, alone);
- `critique.<aspect>`: one aspect of the same critique on [0, 1] (`critique.text_rendering`, ...);
- `py:module:function`: another reward model, a Python function of the request (as `--critic py:`), asked beside
  the critic;
- `ocr`: the text-rendering signal from real OCR (`rewardmodel/backends/ocr.py`, the `[ocr]` extra): how closely the
  text read in the image matches the text the prompt quotes; prompts that quote no text leave the mix.
`SPEC:WEIGHT` gives a term its weight (default 1); a weight must be positive.

Two ways to combine them (`--reward-mix`):
- `sum`: the weighted mean of the terms a sample was scored on (weights renormalised over those), then the usual
  group advantage of that one reward;
- `normalised`: each term's advantage computed within its group on its own scale, then their weighted mean over the
  terms the sample was scored on, so a reward on a large scale does not drown the others.
A term that abstains on a sample is masked for that sample only: it leaves the weighted mean, and a sample no term
scored is masked from the step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, cast

if TYPE_CHECKING:
    from rationalrewards.rewardmodel.backends.base import RewardModel

TermKind = Literal["critique", "aspect", "model"]
RewardMix = Literal["sum", "normalised"]


@dataclass(frozen=True)
class RewardTerm:
    spec: str  # as given, without the weight: the history's and TensorBoard's name for it
    weight: float
    kind: TermKind
    aspect: str | None = None

    @property
    def label(self) -> str:
        return self.spec


def parse_reward_term(text: str, aspects: Sequence[str] = ()) -> RewardTerm:
    """`critique`, `critique.<aspect>` or `py:module:function`, each optionally `:WEIGHT`."""
    spec, weight = text.strip(), 1.0
    head, sep, tail = spec.rpartition(":")
    if sep and head and _is_number(tail):
        spec, weight = head, float(tail)
    if not weight > 0:
        raise ValueError(f"--reward {text!r}: a weight must be positive")
    if spec == "critique":
        return RewardTerm(spec, weight, "critique")
    if spec.startswith("critique."):
        aspect = spec.removeprefix("critique.")
        if aspects and aspect not in aspects:
            raise ValueError(f"--reward {text!r}: unknown aspect {aspect!r}; aspects are {', '.join(aspects)}")
        return RewardTerm(spec, weight, "aspect", aspect)
    if (spec.startswith("py:") and spec.count(":") == 2) or spec == "ocr":
        return RewardTerm(spec, weight, "model")
    raise ValueError(
        f"--reward {text!r}: a term is critique, critique.<aspect>, py:module:function or ocr, each optionally :WEIGHT"
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_reward_terms(texts: Sequence[str], aspects: Sequence[str] = ()) -> list[RewardTerm]:
    terms = [parse_reward_term(t, aspects) for t in texts] or [RewardTerm("critique", 1.0, "critique")]
    seen = [t.spec for t in terms]
    if len(set(seen)) != len(seen):
        raise ValueError(f"--reward names a term twice ({', '.join(seen)})")
    return terms


def weighted_mean(values: Mapping[str, float | None], weights: Mapping[str, float]) -> float | None:
    """The weighted mean of the scored terms (weights renormalised over them); None when none scored."""
    scored = [(weights[name], value) for name, value in values.items() if value is not None]
    total = sum(w for w, _ in scored)
    return sum(w * v for w, v in scored) / total if scored else None


def term_reward_model(term: RewardTerm) -> RewardModel:
    """The reward model behind a `model` term: `ocr`, or a `py:` function."""
    from rationalrewards.rewardmodel.backends.function import FunctionRewardModel

    if term.spec == "ocr":
        from rationalrewards.rewardmodel.backends.ocr import ocr_reward

        return cast("RewardModel", FunctionRewardModel(ocr_reward, name="ocr", timeout=120.0))
    from rationalrewards.agents.factory import reward_model_from_spec

    return reward_model_from_spec(term.spec)


__all__ = ["RewardMix", "RewardTerm", "parse_reward_term", "parse_reward_terms", "term_reward_model", "weighted_mean"]
