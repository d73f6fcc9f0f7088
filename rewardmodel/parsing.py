"""Parse critique texts into typed objects, robustly, in linear time, and without ever inventing a score.

The released code splits on literal strings and maps a failed parse to 0.0 or 2.5. Here a text is read line by line
by a small state machine: each recognised marker (section header, aspect header, Justification / Score / Winner line)
switches the field that the following lines belong to. That tolerates score-first and justification-first order,
bold markers, missing hashes, CRLF, numbering that differs between T2I (3 aspects) and edit (4 aspects) since aspects
are keyed by name, a `## Score:` run onto the end of a justification line, prose before the critique, and prose after
a horizontal rule or code fence.

Linear time: every line is first normalised by plain string operations (bold markers removed, whitespace runs
collapsed to one space, leading hashes and list markers stripped); the few patterns then run on that normalised form,
anchored, with no two unbounded quantifiers that can match the same characters. A critic that writes a megabyte of
spaces costs milliseconds, not hours.

Scores (`read_score`): one number on the 1-4 scale, optionally written `x/4` or `x out of 4`, optionally followed by a
remark that holds no other number (`2.5 (clear anatomical flaw)`). A number at most one point outside the scale
(0 or 5 at most) is clamped with a warning. Anything else is a `CritiqueParseError` with the raw text, never a guess: ranges,
two numbers, other denominators, percentages, exponents, decimal commas, repeated score lines that disagree, and any
numeral other than the ASCII digits (`3½`, `2¾`, `3²`, other scripts' digits: refused rather than read as 3).
N/A is accepted only for Text Rendering; a Text Rendering section that is missing altogether is read as N/A with a
warning when the critique went on to its summary and the request asks for no text (the released models often omit
it when nothing was asked); in a text cut off before it, it stays missing.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
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

CLAMP_MARGIN = 1.0  # how far outside [1, 4] a score may stray and still be read (clamped, with a warning)

# Patterns below run on normalised lines: lower case, no bold markers, single spaces, no leading hashes or list marker.
_ASPECT_NAMES = {
    Aspect.text_faithfulness: r"text[ _-]?faithfulness",
    Aspect.image_faithfulness: r"image[ _-]?faithfulness",
    Aspect.physical_quality: r"physical ?(?:and|&) ?visual quality|visual quality|physical quality",
    Aspect.text_rendering: r"text[ _-]?rendering",
}
_ASPECT_HEADER = {
    aspect: re.compile(r"(?:\d{1,2} ?[.)] ?)?(?:" + name + r") ?:?") for aspect, name in _ASPECT_NAMES.items()
}
# (name, pattern, needs a colon, needs hashes): sections end the per-aspect judgement.
_SECTIONS: list[tuple[str, re.Pattern[str], bool, bool]] = [
    ("analysis", re.compile(r"user request analysis"), False, True),
    ("judgement", re.compile(r"detailed judge?ment"), False, True),
    ("refinement", re.compile(r"user request refinement"), False, True),
    ("summary", re.compile(r"summary"), False, True),
    ("summary", re.compile(r"summary"), True, False),
    ("refinement_comments", re.compile(r"refinement comments?"), True, False),
    ("refined_request", re.compile(r"refined (?:user )?request"), True, False),
]
_FIELDS: list[tuple[str, re.Pattern[str]]] = [
    ("justification", re.compile(r"justification")),
    ("score_a", re.compile(r"score (?:for )?(?:image )?a")),
    ("score_b", re.compile(r"score (?:for )?(?:image )?b")),
    ("score", re.compile(r"score")),
    ("winner", re.compile(r"winner")),
]
# Every marker above starts with one of these: a line that matches none of them is body text, read with one match
# instead of a dozen (parsing was a tenth of PARROT's event-loop time).
_ANY_MARKER = re.compile(
    "|".join(
        [r"(?:\d{1,2} ?[.)] ?)?(?:" + "|".join(_ASPECT_NAMES.values()) + ")"]
        + [pattern.pattern for _, pattern, _, _ in _SECTIONS]
        + [pattern.pattern for _, pattern in _FIELDS]
    )
)
# A `## Field:` run onto the end of a line. The lookbehind is one character and every run is bounded, so scanning a
# line is linear: only the first position after a non-space, non-hash character can start a match.
_INLINE_FIELD = re.compile(r"(?<=[^\s#])[ \t]*#{2,6} ?\*{0,2}(?:score|justification|winner)\b", re.I)
_NUMBER = re.compile(r"\d+(?:\.\d+)?", re.ASCII)
_DENOMINATOR = re.compile(r" ?/ ?(\d+(?:\.\d+)?)| out of (\d+(?:\.\d+)?)", re.ASCII)
_NOT_APPLICABLE = re.compile(r"(?:n ?/ ?a|na|not applicable)(?![a-z0-9])")
_WINNERS: list[tuple[Winner, re.Pattern[str]]] = [
    ("tie", re.compile(r"\btie\b|\btied\b|\bequal|\bneither\b|\bboth\b")),
    ("A", re.compile(r"^\W*(?:image ?)?a\b|\bimage ?a\b")),
    ("B", re.compile(r"^\W*(?:image ?)?b\b|\bimage ?b\b")),
]
_TEXT_REQUEST = re.compile(
    r"[\"'\u2018\u2019\u201c\u201d`][^\"'\u2018\u2019\u201c\u201d`]+[\"'\u2018\u2019\u201c\u201d`]"
    r"|\b(?:text|words?|lettering|caption|inscription|slogan|says|saying|spelled|spelling|written)\b",
    re.I,
)


def asks_for_text(request: str) -> bool:
    """Whether a request asks for rendered text (quoted text, or words such as "text", "says", "written"): then Text
    Rendering is an active aspect and a critique may not leave it out."""
    return bool(_TEXT_REQUEST.search(request or ""))


def _normalise(line: str) -> tuple[str, bool]:
    """(the line as markers are matched: lower case, bold markers gone, single spaces, no leading hashes or list
    marker; whether it started with hashes). Plain string operations only: linear in the line's length."""
    text = " ".join(line.replace("**", "").split())
    stripped = text.lstrip("#")
    hashes = len(stripped) != len(text)
    text = stripped.lstrip()
    if text[:2] in ("- ", "* "):
        text = text[2:]
    return text.lower(), hashes


def _after_colon(raw: str) -> str:
    """What follows a marker's colon on the raw line (bold markers around the value removed)."""
    colon = raw.find(":")
    if colon < 0:
        return ""
    rest = raw[colon + 1 :].strip()
    if rest.startswith("**"):
        rest = rest[2:].lstrip()
    return rest


def _split_inline_fields(line: str) -> list[str]:
    """`... text. ## Score: 3` becomes two lines: a field marker with hashes starts a field even mid-line."""
    cuts = [match.start() for match in _INLINE_FIELD.finditer(line)]
    if not cuts:
        return [line]
    bounds = [0, *cuts, len(line)]
    return [line[a:b] for a, b in itertools.pairwise(bounds)]


def _is_closer(line: str) -> bool:
    """A horizontal rule or a code fence: what follows it is not part of the critique."""
    s = line.strip()
    return s.startswith("```") or (len(s) >= 3 and len(set(s)) == 1 and s[0] in "-*_")


@dataclass
class _Block:
    """The raw text of every field seen, before values are read."""

    sections: dict[str, list[str]] = field(default_factory=dict)
    aspects: dict[Aspect, dict[str, list[list[str]]]] = field(default_factory=dict)  # field -> one list per occurrence
    warnings: list[str] = field(default_factory=list)


def _section(normal: str, hashes: bool) -> str | None:
    for name, pattern, needs_colon, needs_hashes in _SECTIONS:
        match = pattern.match(normal) if hashes or not needs_hashes else None
        if match is None:
            continue
        rest = normal[match.end() :]
        if rest.lstrip().startswith(":") if needs_colon else (not rest or rest[0] in " :"):
            return name
    return None


def _field(normal: str) -> str | None:
    for name, pattern in _FIELDS:
        match = pattern.match(normal)
        if match is not None and normal[match.end() :].lstrip().startswith(":"):
            return name
    return None


def _split(text: str) -> _Block:
    block = _Block()
    target: list[str] | None = None
    current: Aspect | None = None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for raw in (part for line in lines for part in _split_inline_fields(line)):
        if _is_closer(raw):
            target = None
            continue
        normal, hashes = _normalise(raw)
        if _ANY_MARKER.match(normal) is None:  # body text: it belongs to the current field, if any
            if target is not None:
                target.append(raw)
            continue
        aspect = next((a for a, pattern in _ASPECT_HEADER.items() if pattern.fullmatch(normal)), None)
        if aspect is not None:
            if aspect in block.aspects:
                block.warnings.append(f"{aspect.header} appears twice; the first judgement is kept")
                current, target = None, None
            else:
                current, target = aspect, None
                block.aspects[aspect] = {}
            continue
        section = _section(normal, hashes)
        if section is not None:
            current = None  # a section header ends the per-aspect judgement
            target = block.sections.setdefault(section, [])
            target.append(_after_colon(raw))
            continue
        name = _field(normal) if current is not None else None
        if current is not None and name is not None:
            target = [_after_colon(raw)]
            block.aspects[current].setdefault(name, []).append(target)
            continue
        if target is not None:
            target.append(raw)
    return block


def _text(lines: list[str] | None) -> str:
    return "\n".join(lines or []).strip()


def _other_numeral(value: str) -> str | None:
    """The first character that has a numeric value but is not an ASCII digit (vulgar fractions, superscripts, circled
    numbers, other scripts' digits): the reader reads ASCII digits only and refuses what it would read wrong."""
    for character in value:
        if not character.isascii() and unicodedata.numeric(character, None) is not None:
            return character
    return None


def read_score(raw: str, what: str, warnings: list[str]) -> float | None:
    """The value of one score field: a float on the 1-4 scale, or None for N/A. Raises `ValueError` (with the reason)
    for anything that is not one readable score; the caller adds the raw text."""
    value = " ".join(raw.replace("*", "").replace("`", "").split()).lower()
    if not value:
        raise ValueError(f"{what} is empty")
    if (numeral := _other_numeral(value)) is not None:  # 3½, 2¾, 3², ٣: a number this reader would misread
        raise ValueError(f"{what} {raw.strip()!r} holds {numeral!r}, a numeral other than the digits 0-9")
    if (not_applicable := _NOT_APPLICABLE.match(value)) is not None:
        if _NUMBER.search(value[not_applicable.end() :]):
            raise ValueError(f"{what} {raw.strip()!r} is N/A and a number at once")
        return None
    number = _NUMBER.match(value)
    if number is None:
        raise ValueError(f"{what} {raw.strip()!r} is not a number on the 1-4 scale")
    rest = value[number.end() :]
    if (rest[:1] in (",", "e") and rest[1:2].isdigit()) or rest[:2] in ("e+", "e-"):
        raise ValueError(f"{what} {raw.strip()!r} is not a plain number (decimal comma or exponent)")
    if rest.startswith(("%", " %", " percent")):
        raise ValueError(f"{what} {raw.strip()!r} is a percentage, not a score on the 1-4 scale")
    denominator = _DENOMINATOR.match(rest)
    if denominator is not None:
        scale = float(denominator.group(1) or denominator.group(2))
        if scale != SCORE_MAX:
            raise ValueError(f"{what} {raw.strip()!r} is given out of {scale:g}, not on the 1-4 scale")
        rest = rest[denominator.end() :]
    if _NUMBER.search(rest):
        raise ValueError(f"{what} {raw.strip()!r} holds more than one number (a range or two scores?)")
    score = float(number.group())
    if not SCORE_MIN <= score <= SCORE_MAX:
        if not SCORE_MIN - CLAMP_MARGIN <= score <= SCORE_MAX + CLAMP_MARGIN:
            raise ValueError(f"{what} {score:g} is outside the 1-4 scale")
        clamped = min(max(score, SCORE_MIN), SCORE_MAX)
        warnings.append(f"{what} {score:g} is outside [1, 4]; clamped to {clamped:g}")
        score = clamped
    return score


def _one_score(occurrences: list[list[str]], what: str, warnings: list[str], text: str) -> float | None:
    """The single value of a score field that may have been written more than once (all copies must agree)."""
    values = []
    for lines in occurrences:
        try:
            values.append(read_score(_text(lines).split("\n", 1)[0], what, warnings))
        except ValueError as e:
            raise CritiqueParseError(str(e), text) from e
    if len(set(values)) > 1:
        shown = ", ".join("N/A" if v is None else f"{v:g}" for v in values)
        raise CritiqueParseError(f"{what} is written {len(values)} times with different values ({shown})", text)
    if len(values) > 1:
        warnings.append(f"{what} is written {len(values)} times (same value)")
    return values[0]


def _read_winner(raw: list[list[str]] | None) -> Winner | None:
    text = " ".join(_text(raw[0]).replace("*", "").lower().split()) if raw else ""
    return next((winner for winner, pattern in _WINNERS if text and pattern.search(text)), None)


def _check_nonempty(text: str) -> None:
    if not text or not text.strip():
        raise CritiqueParseError("empty critique text", text or "")


@dataclass
class _Reading:
    """What both parsers read from one text: per aspect the values of `score_fields`, its justification and winner."""

    block: _Block
    values: dict[Aspect, dict[str, float | None]]
    warnings: list[str]

    def justification(self, aspect: Aspect) -> str:
        occurrences = self.block.aspects.get(aspect, {}).get("justification") or [[]]
        return _text(occurrences[0])


def _read(text: str, task: Task, request: str, score_fields: tuple[str, ...], kind: str) -> _Reading:
    _check_nonempty(text)
    block = _split(text)
    warnings = list(block.warnings)
    values: dict[Aspect, dict[str, float | None]] = {}
    for aspect, fields in block.aspects.items():
        if not all(name in fields for name in score_fields):
            continue
        values[aspect] = {
            name: _one_score(fields[name], f"{aspect.header} {name.replace('_', ' ')}", warnings, text)
            for name in score_fields
        }
        if aspect not in task.aspects:
            warnings.append(f"{aspect.header} is not part of the {task.value} format; kept but unused")
        elif aspect is not Aspect.text_rendering and any(v is None for v in values[aspect].values()):
            raise CritiqueParseError(f"{aspect.header} is N/A, but only Text Rendering may be N/A", text)
    # A missing Text Rendering section is N/A only when the critique clearly went on past it (it reached its summary or
    # refinement) and nothing asked for text; a text that stops earlier is cut off, not silent about text.
    went_on = any(
        name in block.sections for name in ("summary", "refinement", "refinement_comments", "refined_request")
    )
    leave_out = Aspect.text_rendering in task.aspects and Aspect.text_rendering not in values
    if leave_out and went_on and not asks_for_text(request):
        values[Aspect.text_rendering] = dict.fromkeys(score_fields)
        warnings.append("Text Rendering is missing; read as N/A since the request asks for no text")
    missing = [a.header for a in task.aspects if a not in values]
    if missing:
        hint = " (the text looks cut off)" if not values else ""
        raise CritiqueParseError(
            f"{kind} for the {task.value} format lacks a readable score for: {', '.join(missing)}{hint}", text
        )
    return _Reading(block=block, values=values, warnings=warnings)


def _common(reading: _Reading, text: str, task: Task, request: str, model: str) -> dict[str, object]:
    sections = reading.block.sections
    return {
        "task": task,
        "request": request,
        "analysis": _text(sections.get("analysis")),
        "summary": _text(sections.get("summary")),
        "raw_text": text,
        "model": model,
        "warnings": tuple(reading.warnings),
    }


def parse_critique(text: str, task: Task | str = Task.t2i, *, request: str = "", model: str = "") -> Critique:
    """Parse a pointwise critique. Raises `CritiqueParseError` (holding `raw_text`) if any required score is missing
    or unreadable. `request` (the prompt judged) decides whether a missing Text Rendering section may be read as N/A."""
    task = Task(task)
    reading = _read(text, task, request, ("score",), "critique")
    assessments = {
        aspect: AspectAssessment(score=values["score"], justification=reading.justification(aspect))
        for aspect, values in reading.values.items()
    }
    sections = reading.block.sections
    return Critique(
        assessments=assessments,
        refinement_comments=_text(sections.get("refinement_comments")),
        refined_request=_text(sections.get("refined_request")),
        **_common(reading, text, task, request, model),
    )


def parse_pairwise(text: str, task: Task | str = Task.t2i, *, request: str = "", model: str = "") -> PairwiseJudgement:
    """Parse a pairwise critique (Score A / Score B / Winner per aspect). `preferred` comes from the summed scores."""
    task = Task(task)
    reading = _read(text, task, request, ("score_a", "score_b"), "pairwise critique")
    aspects = {
        aspect: PairwiseAspect(
            score_a=values["score_a"],
            score_b=values["score_b"],
            winner=_read_winner(reading.block.aspects.get(aspect, {}).get("winner")),
            justification=reading.justification(aspect),
        )
        for aspect, values in reading.values.items()
    }
    return PairwiseJudgement(aspects=aspects, **_common(reading, text, task, request, model))


__all__ = ["asks_for_text", "parse_critique", "parse_pairwise", "read_score"]
