"""Parse critique texts into typed objects, robustly and without ever inventing a score.

The released code splits on literal strings and maps a failed parse to 0.0 or 2.5. Here a text is read line by line
by a small state machine: each recognised marker (section header, aspect header, Justification / Score / Winner line)
switches the field that the following lines belong to. That tolerates score-first and justification-first order,
bold values, `3.5/4`, missing hashes, CRLF, numbering that differs between T2I (3 aspects) and edit (4 aspects) since
aspects are keyed by name, prose before the critique, and prose after a horizontal rule or code fence. A text that
lacks a required aspect's score raises `CritiqueParseError` holding the raw text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from rationalrewards.rewardmodel.errors import CritiqueParseError
from rationalrewards.rewardmodel.schemas import (
    SCORE_MAX,
    SCORE_MIN,
    Aspect,
    AspectAssessment,
    Critique,
    PairwiseAspect,
    PairwiseJudgement,
    Task,
    Winner,
)

_ASPECT_NAMES = {
    Aspect.text_faithfulness: r"text[\s_-]+faithfulness",
    Aspect.image_faithfulness: r"image[\s_-]+faithfulness",
    Aspect.physical_quality: r"physical\s*(?:and|&)\s*visual\s+quality|visual\s+quality|physical\s+quality",
    Aspect.text_rendering: r"text[\s_-]+rendering",
}
# Decoration a model may put around a header or field name: hashes, bold, list markers.
_PRE = r"^\s*(?:#{1,6}\s*)?(?:[-*]\s+)?(?:\*\*)?\s*"
_POST = r"\s*(?:\*\*)?\s*"
_ASPECT_HEADER = {
    aspect: re.compile(_PRE + r"(?:\d+\s*[.)]\s*)?(?:\*\*)?\s*(?:" + name + r")" + _POST + r":?" + _POST + r"$", re.I)
    for aspect, name in _ASPECT_NAMES.items()
}


def _marker(name: str, colon: bool = True) -> re.Pattern[str]:
    return re.compile(_PRE + name + _POST + (":" if colon else ":?") + _POST + r"(?P<rest>.*)$", re.I)


_SECTION_MARKERS: list[tuple[str, re.Pattern[str]]] = [
    (
        "analysis",
        re.compile(
            r"^\s*#{1,6}\s*(?:\*\*)?\s*user\s+request\s+analysis" + _POST + ":?" + _POST + r"(?P<rest>.*)$", re.I
        ),
    ),
    (
        "judgement",
        re.compile(r"^\s*#{1,6}\s*(?:\*\*)?\s*detailed\s+judge?ment" + _POST + ":?" + _POST + r"(?P<rest>.*)$", re.I),
    ),
    (
        "refinement",
        re.compile(
            r"^\s*#{1,6}\s*(?:\*\*)?\s*user\s+request\s+refinement" + _POST + ":?" + _POST + r"(?P<rest>.*)$", re.I
        ),
    ),
    ("summary", re.compile(r"^\s*#{1,6}\s*(?:\*\*)?\s*summary" + _POST + ":?" + _POST + r"(?P<rest>.*)$", re.I)),
    ("summary", _marker(r"summary")),
    ("refinement_comments", _marker(r"refinement\s+comments?")),
    ("refined_request", _marker(r"refined\s+(?:user\s+)?request")),
]
_FIELD_MARKERS: list[tuple[str, re.Pattern[str]]] = [
    ("justification", _marker(r"justification")),
    ("score_a", _marker(r"score\s*(?:for\s+)?(?:image\s*)?a")),
    ("score_b", _marker(r"score\s*(?:for\s+)?(?:image\s*)?b")),
    ("score", _marker(r"score")),
    ("winner", _marker(r"winner")),
]
# Every marker line starts with one of these words after its decoration: lines that don't (most of a critique) skip
# the fifteen marker patterns.
_MAYBE_MARKER = re.compile(
    _PRE
    + r"(?:\d+\s*[.)]\s*)?(?:\*\*)?\s*(?:text|image|physical|visual|user|detailed|summary|refine|justification|score|winner)",
    re.I,
)
# A horizontal rule or a code fence closes whatever field is open: prose after it is not part of the critique.
_CLOSER = re.compile(r"^\s*(?:-{3,}|\*{3,}|_{3,}|```.*)\s*$")
_SCORE_VALUE = re.compile(
    r"^\s*(?:(?P<na>n\s*/\s*a|na|not\s+applicable)\b|(?P<num>[-+]?\d+(?:\.\d+)?)(?:\s*/\s*(?P<den>\d+(?:\.\d+)?))?)",
    re.I,
)
_WINNER_VALUE = [
    ("tie", re.compile(r"\btie\b|\btied\b|\bequal|\bneither\b|\bboth\b", re.I)),
    ("A", re.compile(r"^\W*(?:image\s*)?a\b|\bimage\s*a\b", re.I)),
    ("B", re.compile(r"^\W*(?:image\s*)?b\b|\bimage\s*b\b", re.I)),
]


@dataclass
class _Block:
    """The raw text of every field seen, before values are read."""

    sections: dict[str, list[str]] = field(default_factory=dict)
    aspects: dict[Aspect, dict[str, list[str]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _split(text: str) -> _Block:
    block = _Block()
    target: list[str] | None = None
    current: Aspect | None = None
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if _CLOSER.match(line):
            target = None
            continue
        if not _MAYBE_MARKER.match(line):
            if target is not None:
                target.append(line)
            continue
        aspect = next((a for a, pattern in _ASPECT_HEADER.items() if pattern.match(line)), None)
        if aspect is not None:
            if aspect in block.aspects:
                block.warnings.append(f"{aspect.header} appears twice; the first judgement is kept")
                current, target = None, None
            else:
                current, target = aspect, None
                block.aspects[aspect] = {}
            continue
        section = next(((name, m) for name, pattern in _SECTION_MARKERS if (m := pattern.match(line))), None)
        if section is not None:
            name, match = section
            current = None  # a section header ends the per-aspect judgement
            target = block.sections.setdefault(name, [])
            target.append(match.group("rest"))
            continue
        if current is not None:
            fieldmatch = next(((name, m) for name, pattern in _FIELD_MARKERS if (m := pattern.match(line))), None)
            if fieldmatch is not None:
                name, match = fieldmatch
                target = block.aspects[current].setdefault(name, [])
                target.append(match.group("rest"))
                continue
        if target is not None:
            target.append(line)
    return block


def _text(lines: list[str] | None) -> str:
    return "\n".join(lines or []).strip()


def _read_score(raw: list[str] | None, what: str, warnings: list[str]) -> tuple[bool, float | None]:
    """(found, value). A value outside [1, 4] is clamped and the clamp recorded; N/A is None."""
    text = _text(raw).replace("*", "").replace("`", "")
    match = _SCORE_VALUE.match(text)
    if match is None:
        return False, None
    if match.group("na"):
        return True, None
    value = float(match.group("num"))
    denominator = match.group("den")
    if denominator is not None and float(denominator) != SCORE_MAX:
        warnings.append(f"{what} was given out of {denominator}; read as {value:g} on the 1-4 scale")
    if not SCORE_MIN <= value <= SCORE_MAX:
        clamped = min(max(value, SCORE_MIN), SCORE_MAX)
        warnings.append(f"{what} {value:g} is outside [1, 4]; clamped to {clamped:g}")
        value = clamped
    return True, value


def _read_winner(raw: list[str] | None) -> Winner | None:
    text = _text(raw).replace("*", "")
    if not text:
        return None
    for winner, pattern in _WINNER_VALUE:
        if pattern.search(text):
            return winner  # type: ignore[return-value]
    return None


def _check_nonempty(text: str) -> None:
    if not text or not text.strip():
        raise CritiqueParseError("empty critique text", text or "")


def _require(found: Mapping[Aspect, object], task: Task, text: str, kind: str) -> None:
    missing = [a.header for a in task.aspects if a not in found]
    if missing:
        raise CritiqueParseError(
            f"{kind} for the {task.value} format lacks a readable score for: {', '.join(missing)}"
            + (" (the text looks cut off)" if not found else ""),
            text,
        )


def parse_critique(text: str, task: Task | str = Task.t2i, *, request: str = "", model: str = "") -> Critique:
    """Parse a pointwise critique. Raises `CritiqueParseError` (holding `raw_text`) if any required score is missing."""
    task = Task(task)
    _check_nonempty(text)
    block = _split(text)
    warnings = list(block.warnings)
    assessments: dict[Aspect, AspectAssessment] = {}
    for aspect, fields in block.aspects.items():
        found, score = _read_score(fields.get("score"), f"{aspect.header} score", warnings)
        if not found:
            continue
        if aspect not in task.aspects:
            warnings.append(f"{aspect.header} is not part of the {task.value} format; kept but unused")
        assessments[aspect] = AspectAssessment(score=score, justification=_text(fields.get("justification")))
    _require(assessments, task, text, "critique")
    return Critique(
        task=task,
        request=request,
        assessments=assessments,
        analysis=_text(block.sections.get("analysis")),
        summary=_text(block.sections.get("summary")),
        refinement_comments=_text(block.sections.get("refinement_comments")),
        refined_request=_text(block.sections.get("refined_request")),
        raw_text=text,
        model=model,
        warnings=tuple(warnings),
    )


def parse_pairwise(text: str, task: Task | str = Task.t2i, *, request: str = "", model: str = "") -> PairwiseJudgement:
    """Parse a pairwise critique (Score A / Score B / Winner per aspect). `preferred` comes from the summed scores."""
    task = Task(task)
    _check_nonempty(text)
    block = _split(text)
    warnings = list(block.warnings)
    aspects: dict[Aspect, PairwiseAspect] = {}
    for aspect, fields in block.aspects.items():
        found_a, score_a = _read_score(fields.get("score_a"), f"{aspect.header} score A", warnings)
        found_b, score_b = _read_score(fields.get("score_b"), f"{aspect.header} score B", warnings)
        if not (found_a and found_b):
            continue
        aspects[aspect] = PairwiseAspect(
            score_a=score_a,
            score_b=score_b,
            winner=_read_winner(fields.get("winner")),
            justification=_text(fields.get("justification")),
        )
    _require(aspects, task, text, "pairwise critique")
    return PairwiseJudgement(
        task=task,
        request=request,
        aspects=aspects,
        analysis=_text(block.sections.get("analysis")),
        summary=_text(block.sections.get("summary")),
        raw_text=text,
        model=model,
        warnings=tuple(warnings),
    )
