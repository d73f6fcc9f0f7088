"""The sketch generator's failure model, in one place with named knobs.

The generator reads its prompt with the same parser as everyone else, then *misreads* it the way real text-to-image
models do, at rates that fall when the prompt is explicit (the paper's "latent capability": a clearer request gets a
better image from the same model):

| error | knob(s) | explicit when |
|---|---|---|
| count off by one, growing with the count | `count_base`, `count_per_extra` | a digit or "exactly" |
| a requested colour comes out wrong | `color_miss` | "<noun> colored <colour>" / "that is" |
| colours bound to the wrong object (swapped) | `color_swap` | every coloured object stated explicitly |
| the object named last is dropped | `drop_last` | its count is explicit ("exactly one ...") |
| a relation ignored (random layout) or flipped | `relation_ignored`, `relation_flipped` | absolute placement ("on the left side of the image") |
| quoted text misspelt, more for long strings | `text_base`, `text_per_char` | "with exactly the text ..." |
| edits: nothing changed / wrong object / unrequested change | `edit_noop`, `edit_wrong_object`, `edit_side_effect` | "only", "keep everything else" |

Explicit statements scale a rate by `explicit_factor`. On top, `floor` is irreducible noise: with that probability one
applicable error happens whatever the prompt says. Visual artifacts (smudge, noise, blur, a cut-off object) depend
on the seed alone, so only a new seed fixes them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class FailureModel:
    count_base: float = 0.34
    count_per_extra: float = 0.14
    color_miss: float = 0.12
    color_swap: float = 0.50
    drop_last: float = 0.16
    relation_ignored: float = 0.55
    relation_flipped: float = 0.22
    text_base: float = 0.10
    text_per_char: float = 0.07
    edit_noop: float = 0.12
    edit_wrong_object: float = 0.15
    edit_side_effect: float = 0.15
    explicit_factor: float = 0.15
    floor: float = 0.04
    smudge: float = 0.10
    noise: float = 0.06
    blur: float = 0.05
    cut_off: float = 0.05

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"FailureModel.{f.name} must be a probability in [0, 1], got {value}")

    def rate(self, base: float, explicit: bool) -> float:
        return base * self.explicit_factor if explicit else base

    def count_error(self, count: int, explicit: bool) -> float:
        if count < 2:
            return 0.0
        return min(0.95, self.rate(self.count_base + self.count_per_extra * (count - 2), explicit))

    def text_error(self, text: str, explicit: bool) -> float:
        return min(0.95, self.rate(self.text_base + self.text_per_char * len(text), explicit))

    @classmethod
    def perfect(cls) -> FailureModel:
        """No misreading and no artifacts: renders exactly the prompt's spec (for tests and ground-truth pictures)."""
        return cls(**{f.name: 0.0 for f in fields(cls) if f.name != "explicit_factor"})
