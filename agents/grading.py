"""The `Grader` role (docs/concepts.md, "Protocols"): ground truth for a finished image, when a world has it.

A grader judges an image against its suite row and says whether it is correct, under which tag, and what is wrong.
The batch runner receives one by injection; a run without a grader simply has no accuracy columns. The sketch world
provides `SketchGrader` (scene graphs against GenEval specs); a user with a real benchmark's detector plugs in theirs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from rationalrewards.agents.suite import SuiteRow
from rationalrewards.rewardmodel.schemas import ImageRef


@dataclass(frozen=True)
class Grade:
    correct: bool
    tag: str
    errors: tuple[str, ...] = ()


@runtime_checkable
class Grader(Protocol):
    name: str

    def grade(self, row: SuiteRow, prompt: str, image: ImageRef, source_image: ImageRef | None) -> Grade | None:
        """The grade of `image` made for `row` (`prompt` is the row's request), or None if it cannot be graded."""
        ...


class TagAccuracy:
    """Counts per tag, added one grade at a time (a summary of 100,000 prompts holds a few numbers, not the grades)."""

    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = {}  # tag -> [correct, total]

    def add(self, tag: str, correct: bool) -> None:
        count = self.counts.setdefault(tag, [0, 0])
        count[0] += bool(correct)
        count[1] += 1

    def __bool__(self) -> bool:
        return bool(self.counts)

    def result(self) -> dict[str, float]:
        """Per-tag accuracy and `overall`, the mean over tags (GenEval's summary)."""
        per_tag = {tag: correct / total for tag, (correct, total) in sorted(self.counts.items())}
        if per_tag:
            per_tag["overall"] = sum(per_tag.values()) / len(per_tag)
        return per_tag


def accuracy_by_tag(grades: Iterable[Grade]) -> dict[str, float]:
    """GenEval's summary: per-tag accuracy and `overall`, the mean over tags (not over prompts)."""
    accuracy = TagAccuracy()
    for grade in grades:
        accuracy.add(grade.tag, grade.correct)
    return accuracy.result()
