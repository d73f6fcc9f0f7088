"""The Generate-Critique-Refine loop's knobs, validated once, with the two presets.

Presets (the README's table):
- `paper`: the protocol as the paper writes it (docs/method.md, "Two uses of the same critique"): critique once; if any
  active aspect scores below 3.0, regenerate once with the refined request and the same seed; the refined image is
  not scored again and is the output.
- `release`: what the released refine script does: the same single round and seed, but the image is kept when text
  faithfulness >= 3 and physical quality >= 3 (image faithfulness and text rendering are not consulted).
- `deep` goes further: several rounds, best-of-N candidates with fresh seeds, every image re-scored, the critique
  history passed to the refiner, and the best image so far kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from rationalrewards.plumbing.choices import choice
from rationalrewards.rewardmodel.scoring import RewardPolicy, StopRule

Preset = Literal["paper", "release", "deep"]
PRESETS: tuple[Preset, ...] = ("paper", "release", "deep")


@dataclass(frozen=True)
class GCRConfig:
    max_rounds: int = 2  # generation rounds, the first included
    candidates: int = 1  # images per round (best-of-N)
    threshold: float = 3.0  # the score the stop rule compares with
    stop_rule: StopRule = "paper"  # paper: every active aspect >= threshold; release: text faithfulness and quality
    rescore: bool = False  # critique images after a refinement (the paper does not)
    keep_best: bool = False  # output the best-scored image so far rather than the last one
    seeds: Literal["same", "fresh"] = "same"  # reuse the base seeds each round, or draw new ones
    plateau_rounds: int = 0  # stop when the best reward has not improved for this many rounds (0: never)
    plateau_delta: float = 0.01
    max_generations: int = 0  # compute budget in images per prompt (0: unlimited)
    policy: RewardPolicy = "paper"  # reward policy for selection (see rewardmodel.scoring)
    critique_retries: int = 1  # re-ask an abstaining critic this many times
    human_in_the_loop: bool = False  # interrupt before regeneration to approve or edit the refined prompt
    generate_batch: int = 1  # candidates per generate task (Send); a local pipeline renders a batch in one call
    inline_best_image: bool = False  # the kept image also as a data URL in the output, for clients on other machines

    def __post_init__(self) -> None:
        if self.max_rounds < 1:
            raise ValueError("max_rounds must be at least 1 (the first generation counts as a round)")
        if not 1 <= self.candidates <= 64:
            raise ValueError("candidates must be between 1 and 64")
        if not 1.0 <= self.threshold <= 4.0:
            raise ValueError("threshold is on the 1-4 score scale; the paper uses 3.0")
        choice(self.policy, RewardPolicy, "reward policy")
        choice(self.stop_rule, StopRule, "stop rule")
        if self.seeds not in ("same", "fresh"):
            raise ValueError("seeds must be 'same' or 'fresh'")
        if self.plateau_rounds < 0 or self.max_generations < 0 or self.critique_retries < 0:
            raise ValueError("plateau_rounds, max_generations and critique_retries must be 0 or more")
        if self.generate_batch < 1:
            raise ValueError("generate_batch must be at least 1")
        if self.keep_best and not self.rescore:
            raise ValueError("keep_best needs rescore=True: an unscored refined image cannot be compared")

    @classmethod
    def preset(cls, name: Preset | str, **overrides: Any) -> GCRConfig:
        if name == "paper":
            base = cls()
        elif name == "release":
            base = cls(stop_rule="release")
        elif name == "deep":
            base = cls(max_rounds=4, candidates=4, rescore=True, keep_best=True, seeds="fresh", plateau_rounds=2)
        else:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})

    def for_generator(self, generator: object) -> GCRConfig:
        """Batch candidates the way the generator prefers (its `batch_size`), unless set explicitly already."""
        preferred = int(getattr(generator, "batch_size", 1) or 1)
        return replace(self, generate_batch=preferred) if self.generate_batch == 1 and preferred > 1 else self

    def as_dict(self) -> dict[str, object]:
        return asdict(self)
