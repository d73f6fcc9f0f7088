"""Preference labels as public datasets spell them, read into A, B or tie, and never guessed.

Accepted, per pair of images A and B:
- words: `A`/`B`/`tie`, `left`/`right`, `leftvote`/`rightvote`/`tievote`/`bothbad_vote` (arena exports),
  `model_a`/`model_b`, `image_a`, `first`/`second`, `A>B`, `tie (bothbad)`, ... (`SPELLINGS`);
- the name of the chosen image's column (a `chosen` column holding `jpg_0`, when `jpg_0` is image A's column);
- a float share of preference for A in [0, 1] (Pick-a-Pic's `label_0`: 1.0 -> A, 0.0 -> B, 0.5 -> tie). A float is
  read this way only when it is a float value, never a number written as text or an integer;
- a ranking: two ranks (lower is better; equal ranks are a tie), as HPD and EditReward-Bench store them;
- an integer index into the pair's candidate list (0 -> A, 1 -> B), when the images come from one list column;
- bare numbers otherwise only with a label map (`--label-map 0=A,1=B`): in one dataset 0 means the first image, in
  another 1 does, and guessing would silently flip half of a dataset's labels.
Anything else is a `ValueError` naming the value and the spellings accepted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rationalrewards.rewardmodel.schemas import Winner

SPELLINGS: dict[str, Winner] = {
    "a": "A", "b": "B", "tie": "tie", "left": "A", "right": "B", "model_1": "A", "model_2": "B", "model1": "A",
    "model2": "B", "image a": "A", "image b": "B", "image_a": "A", "image_b": "B", "first": "A", "second": "B",
    "draw": "tie", "equal": "tie", "same": "tie", "both": "tie", "neither": "tie", "it's a tie": "tie", "a>b": "A",
    "b>a": "B", "a=b": "tie", "model_a": "A", "model_b": "B", "model a": "A", "model b": "B",
    "tie (bothbad)": "tie", "both_bad": "tie", "both_good": "tie",  # arena-style exports
    "leftvote": "A", "rightvote": "B", "tievote": "tie", "bothbad_vote": "tie",  # GenAI-Bench's vote_type
    "response_a": "A", "response_b": "B", "a=b (tie)": "tie",
}  # fmt: skip
LabelMap = dict[str, Winner]


def parse_label_map(text: str | None) -> LabelMap:
    """`--label-map 0=A,1=B` (or `1=A,2=B`, `yes=A,no=B`, ...) as a mapping; empty when none is given."""
    if not text:
        return {}
    mapping: LabelMap = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        target = SPELLINGS.get(value.strip().lower()) if sep else None
        if not key.strip() or target is None:
            raise ValueError(f"--label-map takes items like 0=A,1=B (values A, B or tie), got {item.strip()!r}")
        mapping[_text(key)] = target
    return mapping


def _text(value: object) -> str:
    text = " ".join(str(value).strip().lower().split())
    # 1.0 written by a float column and 1 by an int column mean the same key in a label map.
    return text[:-2] if text.endswith(".0") and text[:-2].lstrip("+-").isdigit() else text


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def winner_from_ranks(rank_a: float, rank_b: float) -> Winner:
    """Lower rank is better; equal ranks are a tie."""
    return "A" if rank_a < rank_b else "B" if rank_b < rank_a else "tie"


def winner_from_share(share: float) -> Winner:
    """A share of preference for A in [0, 1] (votes, a probability): above a half A, below B, a half a tie."""
    if not 0.0 <= share <= 1.0 or math.isnan(share):
        raise ValueError(f"label {share!r} is a float outside [0, 1]; a float label is A's share of the preference")
    return "A" if share > 0.5 else "B" if share < 0.5 else "tie"


def normalise_label(
    value: object,
    label_map: LabelMap | None = None,
    *,
    image_columns: Sequence[str] = (),
    from_list: bool = False,
) -> Winner:
    """A, B or tie from any accepted form (module docstring). `image_columns`: the names of image A's and image B's
    columns, which a `chosen` cell may hold; `from_list`: the pair's images come from one list column, so an integer
    is an index into it."""
    text = _text(value)
    if label_map and text in label_map:
        return label_map[text]
    if isinstance(value, list | tuple):
        if len(value) == 2 and all(_is_number(v) for v in value):
            return winner_from_ranks(float(value[0]), float(value[1]))
        raise ValueError(f"label {value!r}: a list label must be the two images' ranks (lower is better)")
    if text in SPELLINGS:
        return SPELLINGS[text]
    if len(image_columns) == 2 and isinstance(value, str) and value.strip() in image_columns:
        return "A" if value.strip() == image_columns[0] else "B"
    if isinstance(value, float):
        return winner_from_share(value)
    if from_list and isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return "A" if value == 0 else "B"
    if text.lstrip("+-").replace(".", "", 1).isdigit():
        raise ValueError(
            f"label {value!r} is a bare number, which datasets use both ways; say what the numbers mean with "
            "--label-map (e.g. 0=A,1=B or 1=A,2=B)"
        )
    spellings = ", ".join(sorted(SPELLINGS))
    raise ValueError(
        f"unknown label {value!r}; accepted spellings: {spellings}; an image column's name; a float share for A in [0, 1]; "
        "two ranks; numbers with --label-map"
    )


__all__ = ["SPELLINGS", "LabelMap", "normalise_label", "parse_label_map", "winner_from_ranks", "winner_from_share"]
